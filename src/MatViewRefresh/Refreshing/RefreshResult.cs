namespace MatViewRefresh;

/// <summary>The result of refreshing one target.</summary>
public sealed record RefreshResult
{
    /// <summary>The view.</summary>
    public required RefreshTarget Target { get; init; }

    /// <summary>What happened.</summary>
    public required RefreshOutcome Outcome { get; init; }

    /// <summary>The mode the caller asked for.</summary>
    public required RefreshMode RequestedMode { get; init; }

    /// <summary>The mode actually run (<see cref="RefreshMode.Full"/> or <see cref="RefreshMode.Concurrent"/>), or <see langword="null"/> when nothing ran.</summary>
    public RefreshMode? ModeUsed { get; init; }

    /// <summary>Why <see cref="ModeUsed"/> was chosen, for example <c>fell back to full: no unique index without WHERE on plain columns</c>.</summary>
    public string? ModeReason { get; init; }

    /// <summary>How many attempts were made (1 when the first one settled it; 0 when nothing ran).</summary>
    public int Attempts { get; init; }

    /// <summary>When the refresh call started (the host's <see cref="TimeProvider"/>).</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When the refresh call finished (the host's <see cref="TimeProvider"/>).</summary>
    public DateTimeOffset FinishedAt { get; init; }

    /// <summary>Wall time of the whole call, attempts and retry delays included.</summary>
    public TimeSpan Duration => FinishedAt - StartedAt;

    /// <summary>
    /// What the refreshed view reflects (database clock), on success: the instant just before the refresh statement took
    /// its snapshot. Data committed before it is in the view; data committed after it may not be. A refresh that took
    /// ten minutes holds data at least ten minutes old when it finishes: freshness counts from here, not from
    /// <see cref="RefreshedAt"/>.
    /// </summary>
    public DateTimeOffset? DataAsOf { get; init; }

    /// <summary>When the database recorded the refresh as done (database clock), on success.</summary>
    public DateTimeOffset? RefreshedAt { get; init; }

    /// <summary>How long the <c>REFRESH</c> statement itself took on the server, on success.</summary>
    public TimeSpan? ServerDuration { get; init; }

    /// <summary>Rows in the view after the refresh, when <see cref="MatViewRefreshOptions.RecordRowCount"/> is on.</summary>
    public long? RowCount { get; init; }

    /// <summary>The strategy a window target ran (<see cref="WindowStrategy.Incremental"/> or <see cref="WindowStrategy.Full"/>) on success; <see langword="null"/> for views and functions.</summary>
    public WindowStrategy? StrategyUsed { get; init; }

    /// <summary>Rows a window refresh deleted from the mart table, on success; <see langword="null"/> for views and functions.</summary>
    public long? RowsDeleted { get; init; }

    /// <summary>Rows a window refresh inserted into the mart table, on success; <see langword="null"/> for views and functions.</summary>
    public long? RowsInserted { get; init; }

    /// <summary>Why the refresh failed or was skipped, otherwise <see langword="null"/>.</summary>
    public RefreshError? Error { get; init; }

    /// <summary><see langword="true"/> when the view was refreshed.</summary>
    public bool Success => Outcome == RefreshOutcome.Succeeded;

    /// <summary><see langword="true"/> when the request was coalesced into a refresh already running.</summary>
    public bool Coalesced => Outcome == RefreshOutcome.Coalesced;
}
