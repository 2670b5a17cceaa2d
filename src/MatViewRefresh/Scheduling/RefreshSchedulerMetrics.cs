namespace MatViewRefresh;

/// <summary>What the scheduler did in this instance since it started (<see cref="IRefreshScheduler.StopAsync"/>).</summary>
public sealed record RefreshSchedulerMetrics
{
    /// <summary>Runs made (succeeded plus failed; forced runs included).</summary>
    public required long TotalRuns { get; init; }

    /// <summary>Runs whose batch succeeded.</summary>
    public required long Succeeded { get; init; }

    /// <summary>Runs that failed, partly failed or were cancelled.</summary>
    public required long Failed { get; init; }

    /// <summary>Ticks skipped because the schedule was still running.</summary>
    public required long SkippedTicks { get; init; }

    /// <summary>Average duration of the runs made; <see cref="TimeSpan.Zero"/> when none.</summary>
    public required TimeSpan AverageDuration { get; init; }

    /// <summary>How long the scheduler ran (from start to stop).</summary>
    public required TimeSpan Uptime { get; init; }
}
