using Microsoft.Extensions.Logging;

namespace MatViewRefresh;

/// <summary>The durable queue's log messages (event ids 5000s, <see cref="MatViewRefreshEventIds"/>).</summary>
internal static partial class Log
{
    [LoggerMessage(MatViewRefreshEventIds.DurableWorkerStarted, LogLevel.Information,
        "Durable refresh worker started: up to {MaxConcurrentRuns} run(s) at once of up to {MaxTargetsPerRun} target(s) each, polling every {PollInterval}, LISTEN/NOTIFY {ListenNotify}")]
    public static partial void DurableWorkerStarted(ILogger logger, int maxConcurrentRuns, int maxTargetsPerRun, TimeSpan pollInterval, bool listenNotify);

    [LoggerMessage(MatViewRefreshEventIds.DurableRunSucceeded, LogLevel.Debug,
        "Durable run of {Target} covered {Requests} request(s) ({Days}); change-to-visible lag {LagMs:F0} ms")]
    public static partial void DurableRunSucceeded(ILogger logger, string target, long requests, string days, double lagMs);

    [LoggerMessage(MatViewRefreshEventIds.DurableRunFailed, LogLevel.Warning,
        "Durable run of {Target} failed ({Failures} failure(s) in a row): {ErrorMessage}; its requests stay, next try in {RetryMs:F0} ms")]
    public static partial void DurableRunFailed(ILogger logger, string target, int failures, string errorMessage, double retryMs, Exception? exception);

    [LoggerMessage(MatViewRefreshEventIds.DurableTargetUnresolved, LogLevel.Warning,
        "Durable requests for {Target} are left to other instances: this instance cannot resolve the target (register it with IRefreshQueue.Register, or set MatViewRefresh:Durable Resolver)")]
    public static partial void DurableTargetUnresolved(ILogger logger, string target);

    [LoggerMessage(MatViewRefreshEventIds.DurableRunCoalesced, LogLevel.Debug,
        "Durable run of {Target} found another refresh of it running; its requests run again after it")]
    public static partial void DurableRunCoalesced(ILogger logger, string target);

    [LoggerMessage(MatViewRefreshEventIds.DurablePollFailed, LogLevel.Warning,
        "Durable refresh worker could not read the queue ({ErrorMessage}); trying again")]
    public static partial void DurablePollFailed(ILogger logger, string errorMessage, Exception exception);

    [LoggerMessage(MatViewRefreshEventIds.DurableWorkerStopped, LogLevel.Information,
        "Durable refresh worker stopped after {Runs} run(s); unfinished claims rolled back, their requests stay queued")]
    public static partial void DurableWorkerStopped(ILogger logger, long runs);

    [LoggerMessage(MatViewRefreshEventIds.DurableGroupFailed, LogLevel.Information,
        "A grouped durable run of {Targets} target(s) failed and was rolled back ({ErrorMessage}); each target runs again alone")]
    public static partial void DurableGroupFailed(ILogger logger, int targets, string errorMessage, Exception exception);

    [LoggerMessage(MatViewRefreshEventIds.DurableSharesUnavailable, LogLevel.Warning,
        "Durable refresh worker cannot use the refresh_workers table ({ErrorMessage}): it reads every due target, not a share of them; run the log schema script (IRefreshLog.EnsureSchemaAsync, or 'matview-refresh schema') and grant the app's role INSERT, UPDATE, DELETE on it")]
    public static partial void DurableSharesUnavailable(ILogger logger, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.DurableLeaveFailed, LogLevel.Debug,
        "Durable refresh worker could not remove itself from the workers sharing the queue ({ErrorMessage}); the others take its share once it has not been seen for a while")]
    public static partial void DurableLeaveFailed(ILogger logger, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.DurableRememberedFull, LogLevel.Warning,
        "The durable queue remembers {Max} targets enqueued by this process; further ones run here only when registered (IRefreshQueue.Register) or resolved (MatViewRefresh:Durable Resolver)")]
    public static partial void DurableRememberedFull(ILogger logger, int max);
}
