namespace MatViewRefresh;

/// <summary>
/// Runs the configured schedules (<see cref="MatViewRefreshOptions.Schedules"/>). Every instance of the app runs the
/// scheduler; each tick runs once across all of them (the first instance to claim the tick in the database runs it).
/// A tick that comes while the schedule's previous run is still going is skipped and counted, never queued.
/// </summary>
/// <remarks>Started with the host unless <see cref="MatViewRefreshOptions.StartScheduler"/> is <see langword="false"/>; stopped with it.</remarks>
public interface IRefreshScheduler
{
    /// <summary>Whether the scheduler is started.</summary>
    bool IsStarted { get; }

    /// <summary>Starts every enabled schedule. Calling it while started starts nothing new.</summary>
    /// <param name="cancellationToken">Not used to stop the scheduler; only cancels starting.</param>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stops ticking, waits for runs in progress (each up to its schedule's <see cref="RefreshScheduleOptions.StopTimeout"/>,
    /// then cancels it) and returns the metrics since the scheduler started. Calling it while stopped returns the last metrics.
    /// </summary>
    /// <param name="cancellationToken">Cancels the runs in progress at once instead of waiting.</param>
    Task<RefreshSchedulerMetrics> StopAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs a schedule now, or every enabled schedule when <paramref name="schedule"/> is <see langword="null"/>, without moving
    /// their next ticks and without claiming a tick. A schedule already running is not run again (its result is
    /// <see cref="RefreshScheduleOutcome.Skipped"/>). Works whether or not the scheduler is started.
    /// </summary>
    /// <param name="schedule">The schedule's name (case-insensitive), or <see langword="null"/> for all.</param>
    /// <param name="cancellationToken">Cancels the runs.</param>
    /// <exception cref="ArgumentException">No schedule has that name.</exception>
    Task<IReadOnlyList<RefreshScheduleRun>> ForceAsync(string? schedule = null, CancellationToken cancellationToken = default);

    /// <summary>The status of every configured schedule, in name order.</summary>
    IReadOnlyList<RefreshScheduleStatus> GetStatus();
}
