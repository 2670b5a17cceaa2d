namespace MatViewRefresh;

/// <summary>
/// What <see cref="IRefreshDebouncer.Request"/> returns at once: when the run is scheduled and a task for its result.
/// A struct, so that a request joining a pending run allocates nothing.
/// </summary>
public readonly struct RefreshTicket : IEquatable<RefreshTicket>
{
    internal RefreshTicket(string key, DateTimeOffset scheduledFor, bool joined, bool skipped, Task<RefreshResult> completion)
    {
        Key = key;
        ScheduledFor = scheduledFor;
        Joined = joined;
        Skipped = skipped;
        Completion = completion;
    }

    /// <summary>The coalescing key.</summary>
    public string Key { get; }

    /// <summary>The earliest time the run covering this request will start (later requests may push it back, up to MaxWait).</summary>
    public DateTimeOffset ScheduledFor { get; }

    /// <summary><see langword="true"/> when the request joined a run already pending for its key (coalesced).</summary>
    public bool Joined { get; }

    /// <summary><see langword="true"/> when nothing was scheduled (debouncing disabled, or the host is stopping).</summary>
    public bool Skipped { get; }

    /// <summary>
    /// Completes with the result of the first run that started after this request (never faults; a run that failed
    /// for good completes it with a failed result). Await it in tests; callers in production need not.
    /// </summary>
    public Task<RefreshResult> Completion { get; }

    /// <inheritdoc />
    public bool Equals(RefreshTicket other) =>
        string.Equals(Key, other.Key, StringComparison.Ordinal) && ScheduledFor == other.ScheduledFor && Joined == other.Joined && Skipped == other.Skipped && ReferenceEquals(Completion, other.Completion);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is RefreshTicket other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Key, ScheduledFor, Joined, Skipped);

    /// <summary>Equality.</summary>
    public static bool operator ==(RefreshTicket left, RefreshTicket right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(RefreshTicket left, RefreshTicket right) => !left.Equals(right);
}
