namespace MatViewRefresh;

/// <summary>
/// The debouncer's clock, in UTC ticks. On <see cref="TimeProvider.System"/> it reads <see cref="Environment.TickCount64"/>
/// (monotonic, about 2 ns instead of about 25 ns for <c>DateTimeOffset.UtcNow</c>; millisecond resolution is
/// plenty for settle delays of seconds) mapped onto the wall clock, re-anchored once a minute. Any other provider
/// (a test's manual clock) is read as is.
/// </summary>
internal sealed class DebounceClock(TimeProvider time)
{
    private const long ReanchorEveryMs = 60_000;
    private readonly bool _system = ReferenceEquals(time, TimeProvider.System);
    private Anchor _anchor = new(time.GetUtcNow().UtcTicks, Environment.TickCount64);

    public long UtcTicks()
    {
        if (!_system)
        {
            return time.GetUtcNow().UtcTicks;
        }

        var anchor = Volatile.Read(ref _anchor);
        var elapsedMs = Environment.TickCount64 - anchor.TickCount;
        if (elapsedMs >= ReanchorEveryMs)
        {
            // Follow the wall clock (NTP) without letting the two drift apart.
            Volatile.Write(ref _anchor, anchor = new Anchor(time.GetUtcNow().UtcTicks, Environment.TickCount64));
            elapsedMs = 0;
        }

        return anchor.UtcTicks + (elapsedMs * TimeSpan.TicksPerMillisecond);
    }

    private sealed record Anchor(long UtcTicks, long TickCount);
}
