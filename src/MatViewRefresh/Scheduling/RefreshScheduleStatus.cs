namespace MatViewRefresh;

/// <summary>The state of one schedule (<see cref="IRefreshScheduler.GetStatus"/>).</summary>
public sealed record RefreshScheduleStatus
{
    /// <summary>The schedule's name.</summary>
    public required string Name { get; init; }

    /// <summary>Whether the schedule is enabled.</summary>
    public required bool Enabled { get; init; }

    /// <summary>Whether a run of it is in progress in this instance.</summary>
    public required bool Running { get; init; }

    /// <summary>The last run in this instance (start, outcome, duration), or <see langword="null"/>.</summary>
    public RefreshScheduleRun? LastRun { get; init; }

    /// <summary>The next tick in UTC; <see langword="null"/> when the scheduler is stopped, the schedule disabled, or there is none.</summary>
    public DateTimeOffset? NextRunUtc { get; init; }

    /// <summary>The next tick in the schedule's time zone.</summary>
    public DateTimeOffset? NextRunLocal { get; init; }

    /// <summary>The schedule's IANA time zone.</summary>
    public required string TimeZone { get; init; }

    /// <summary>The interval, for an interval schedule.</summary>
    public TimeSpan? Interval { get; init; }

    /// <summary>The cron expression, for a cron schedule.</summary>
    public string? Cron { get; init; }

    /// <summary>Runs in this instance whose batch succeeded.</summary>
    public long SucceededCount { get; init; }

    /// <summary>Runs in this instance that failed, partly failed or were cancelled.</summary>
    public long FailedCount { get; init; }

    /// <summary>Ticks skipped because the schedule's previous run was still going.</summary>
    public long SkippedTicks { get; init; }

    /// <summary>Ticks another instance claimed (and ran).</summary>
    public long ClaimedElsewhereCount { get; init; }

    /// <summary>
    /// The newest value of <see cref="RefreshScheduleOptions.DataTimestampColumn"/> read after the last run that refreshed
    /// something in this instance; <see langword="null"/> without that setting, before such a run, or when the view is empty.
    /// </summary>
    public DateTimeOffset? DataAsOf { get; init; }

    /// <summary>How far <see cref="DataAsOf"/> is behind now; <see langword="null"/> when <see cref="DataAsOf"/> is.</summary>
    public TimeSpan? DataBehind { get; init; }
}
