namespace MatViewRefresh;

/// <summary>How a refresh's duration compares with <see cref="MatViewRefreshOptions.FastThreshold"/> and <see cref="MatViewRefreshOptions.SlowThreshold"/>.</summary>
public enum RefreshRating
{
    /// <summary>At most the fast threshold (default 1000 ms).</summary>
    Fast = 0,

    /// <summary>Between the fast and slow thresholds.</summary>
    Normal = 1,

    /// <summary>Longer than the slow threshold (default 5000 ms).</summary>
    Slow = 2,
}

/// <summary>How fresh one target is, from the refresh log (ages measured on the database clock).</summary>
public sealed record ViewFreshness
{
    /// <summary>The target, as written in the log.</summary>
    public required string Target { get; init; }

    /// <summary>The target's scope; empty for a whole view.</summary>
    public required string Scope { get; init; }

    /// <summary>When its last successful refresh finished; <see langword="null"/> when every attempt failed.</summary>
    public DateTimeOffset? RefreshedAt { get; init; }

    /// <summary>
    /// What the target reflects: the instant just before its last successful refresh took its snapshot. Data committed
    /// before it is in the view; data committed after it may not be. Earlier than <see cref="RefreshedAt"/> by the
    /// refresh's duration: a 10-minute refresh that just finished holds data 10 minutes old. <see cref="Age"/> and
    /// <see cref="IsStale"/> count from here. <see langword="null"/> when every attempt failed.
    /// </summary>
    public DateTimeOffset? DataAsOf { get; init; }

    /// <summary>How long the last successful refresh took on the server.</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>How old the data is: time since <see cref="DataAsOf"/>, on the database clock.</summary>
    public TimeSpan? Age { get; init; }

    /// <summary>The mode of the last successful refresh (<c>full</c> or <c>concurrent</c>).</summary>
    public string? Mode { get; init; }

    /// <summary>Rows after the last refresh, when <see cref="MatViewRefreshOptions.RecordRowCount"/> is on.</summary>
    public long? RowCount { get; init; }

    /// <summary>When a refresh was last attempted, successful or not.</summary>
    public required DateTimeOffset LastAttemptAt { get; init; }

    /// <summary>The error of the last attempt, when it failed.</summary>
    public string? LastError { get; init; }

    /// <summary>The SQLSTATE of the last attempt's error, when it failed on the server.</summary>
    public string? LastErrorSqlState { get; init; }

    /// <summary>The last successful refresh's duration, rated.</summary>
    public RefreshRating? Rating { get; init; }

    /// <summary>
    /// The change-to-visible lag of the last successful durable run (<see cref="IRefreshQueue"/>): from its oldest covered request
    /// to the refresh. <see langword="null"/> when no durable run succeeded within the history's retention.
    /// </summary>
    public TimeSpan? LastLag { get; init; }

    /// <summary><see langword="true"/> when the target was never refreshed successfully or its data (<see cref="DataAsOf"/>) is older than <paramref name="maxAge"/>.</summary>
    public bool IsStale(TimeSpan maxAge) => Age is not { } age || age > maxAge;
}

/// <summary>One run in the refresh history.</summary>
public sealed record RefreshHistoryEntry
{
    /// <summary>The row's id.</summary>
    public required long Id { get; init; }

    /// <summary>The target, as written in the log.</summary>
    public required string Target { get; init; }

    /// <summary>The target's scope; empty for a whole view.</summary>
    public required string Scope { get; init; }

    /// <summary>When the refresh proper started (database clock, after the lock was taken) or, for a failure, when the call started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>How long it took.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>Whether the run succeeded.</summary>
    public required bool Success { get; init; }

    /// <summary>The mode run (<c>full</c> or <c>concurrent</c>).</summary>
    public string? Mode { get; init; }

    /// <summary>Attempts the run took.</summary>
    public required int Attempts { get; init; }

    /// <summary>What started the run.</summary>
    public required string Trigger { get; init; }

    /// <summary>The SQLSTATE of the failure, if any.</summary>
    public string? ErrorSqlState { get; init; }

    /// <summary>The failure's message, if any.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>What a successful run reflects (see <see cref="ViewFreshness.DataAsOf"/>); <see langword="null"/> for a failure.</summary>
    public DateTimeOffset? DataAsOf { get; init; }
}

/// <summary>Statistics of the runs in the history. Durations are those of successful runs; percentiles interpolate linearly (<c>percentile_cont</c>).</summary>
public sealed record RefreshSummary
{
    /// <summary>Runs counted.</summary>
    public required long Count { get; init; }

    /// <summary>Successful runs.</summary>
    public required long Successes { get; init; }

    /// <summary>Failed runs.</summary>
    public required long Failures { get; init; }

    /// <summary>Successes as a percentage of runs (0 to 100); <see langword="null"/> with no runs.</summary>
    public double? SuccessRate => Count == 0 ? null : 100.0 * Successes / Count;

    /// <summary>Mean duration.</summary>
    public TimeSpan? Average { get; init; }

    /// <summary>Median duration.</summary>
    public TimeSpan? P50 { get; init; }

    /// <summary>95th percentile duration.</summary>
    public TimeSpan? P95 { get; init; }

    /// <summary>99th percentile duration.</summary>
    public TimeSpan? P99 { get; init; }

    /// <summary>Shortest duration.</summary>
    public TimeSpan? Min { get; init; }

    /// <summary>Longest duration.</summary>
    public TimeSpan? Max { get; init; }

    /// <summary>Median change-to-visible lag of successful durable runs (<see cref="IRefreshQueue"/>): from a run's oldest covered request to its refresh.</summary>
    public TimeSpan? LagP50 { get; init; }

    /// <summary>95th percentile change-to-visible lag of successful durable runs.</summary>
    public TimeSpan? LagP95 { get; init; }

    /// <summary>99th percentile change-to-visible lag of successful durable runs.</summary>
    public TimeSpan? LagP99 { get; init; }
}
