using Microsoft.Extensions.Logging;

namespace MatViewRefresh.Tests;

/// <summary>Where the fake clocks of the debouncer tests start (FakeTimeProvider's own default is 2000-01-01).</summary>
internal static class TestClock
{
    public static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
}

/// <summary>Builds a debouncer the way the container does, with a test's environment for the kill switch.</summary>
internal static class TestDebouncer
{
    public static RefreshDebouncer Create(
        IMaterializedViewRefresher refresher,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        MatViewRefreshOptions options,
        ILogger<RefreshDebouncer> logger,
        Func<string, string?>? environment = null) =>
        new(refresher, tasks, time, Microsoft.Extensions.Options.Options.Create(options), logger, environment ?? (_ => null));
}

/// <summary>
/// A <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider"/> that can also run to a time firing each timer
/// with the clock at that timer's due time, as a real clock would. FakeTimeProvider itself moves the clock to the new
/// time first and then fires everything due, so a run due at 1.5 s would start at whatever time the test advanced to;
/// the debounce timeline tests assert exact start times. Timers fire without the test's synchronization context.
/// </summary>
internal sealed class SteppingClock : TimeProvider
{
    private readonly object _gate = new();
    private readonly HashSet<TrackedTimer> _armed = [];

    public SteppingClock(DateTimeOffset start) => Fake = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(start);

    public Microsoft.Extensions.Time.Testing.FakeTimeProvider Fake { get; }

    public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();

    public override long GetTimestamp() => Fake.GetTimestamp();

    public override long TimestampFrequency => Fake.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new TrackedTimer(this);
        timer.Track(dueTime, period);
        timer.Inner = Fake.CreateTimer(s => timer.Fire(callback, s), state, dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock by <paramref name="by"/>, stopping at each armed timer's due time to fire it.</summary>
    public void Advance(TimeSpan by) => RunTo(GetUtcNow() + by);

    /// <summary>Moves the clock to <paramref name="target"/> (never back), stopping at each armed timer's due time to fire it.</summary>
    public void RunTo(DateTimeOffset target)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            while (true)
            {
                DateTimeOffset? next = null;
                lock (_gate)
                {
                    foreach (var timer in _armed)
                    {
                        if (timer.Due <= target && (next is null || timer.Due < next))
                        {
                            next = timer.Due;
                        }
                    }
                }

                if (next is not { } due)
                {
                    break;
                }

                if (due > Fake.GetUtcNow())
                {
                    Fake.SetUtcNow(due);
                }
                else
                {
                    Fake.Advance(TimeSpan.Zero);
                }
            }

            if (target > Fake.GetUtcNow())
            {
                Fake.SetUtcNow(target);
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    private sealed class TrackedTimer(SteppingClock owner) : ITimer
    {
        private TimeSpan? _period;

        public ITimer Inner { get; set; } = null!;

        public DateTimeOffset? Due { get; private set; }

        public void Track(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner.GetUtcNow() + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
                _period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? null : period;
                if (Due is null)
                {
                    owner._armed.Remove(this);
                }
                else
                {
                    owner._armed.Add(this);
                }
            }
        }

        public void Fire(TimerCallback callback, object? state)
        {
            lock (owner._gate)
            {
                Due = _period is { } period ? owner.GetUtcNow() + period : null;
                if (Due is null)
                {
                    owner._armed.Remove(this);
                }
            }

            callback(state);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Track(dueTime, period);
            return Inner.Change(dueTime, period);
        }

        public void Dispose()
        {
            Track(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
