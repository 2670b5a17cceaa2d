using Microsoft.Extensions.Logging;

namespace MatViewRefresh;

internal static partial class Log
{
    [LoggerMessage(MatViewRefreshEventIds.RefreshSucceeded, LogLevel.Information,
        "Refreshed {Target} ({Mode}, {Reason}) in {DurationMs:F1} ms after {Attempts} attempt(s)")]
    public static partial void RefreshSucceeded(ILogger logger, string target, string mode, string reason, double durationMs, int attempts);

    [LoggerMessage(MatViewRefreshEventIds.RefreshFailed, LogLevel.Error,
        "Refresh of {Target} ({Mode}) failed after {Attempts} attempt(s) in {DurationMs:F1} ms: SQLSTATE {SqlState}: {ErrorMessage}")]
    public static partial void RefreshFailed(ILogger logger, string target, string mode, int attempts, double durationMs, string? sqlState, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.RefreshRetrying, LogLevel.Warning,
        "Refresh of {Target} failed transiently on attempt {Attempt} (SQLSTATE {SqlState}: {ErrorMessage}); retrying in {DelayMs:F0} ms")]
    public static partial void RefreshRetrying(ILogger logger, string target, int attempt, string? sqlState, string errorMessage, double delayMs);

    [LoggerMessage(MatViewRefreshEventIds.RefreshFellBack, LogLevel.Warning,
        "Refresh of {Target}: {Reason}")]
    public static partial void RefreshFellBack(ILogger logger, string target, string reason);

    [LoggerMessage(MatViewRefreshEventIds.RefreshCoalesced, LogLevel.Information,
        "Refresh of {Target} coalesced: another refresh of it is running")]
    public static partial void RefreshCoalesced(ILogger logger, string target);

    [LoggerMessage(MatViewRefreshEventIds.RefreshSkipped, LogLevel.Warning,
        "Skipped refresh of {Target}: {Reason}")]
    public static partial void RefreshSkipped(ILogger logger, string target, string reason);

    [LoggerMessage(MatViewRefreshEventIds.FailureNotRecorded, LogLevel.Warning,
        "Could not record the failed refresh of {Target} in the history: {ErrorMessage}")]
    public static partial void FailureNotRecorded(ILogger logger, string target, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.PreparedStatementsUnavailable, LogLevel.Warning,
        "Prepared statements do not work on this connection ({ErrorMessage}): a pooler in transaction mode? Refreshes are no longer prepared in this process; set MatViewRefresh:PrepareStatements=false to skip the first failed attempt")]
    public static partial void PreparedStatementsUnavailable(ILogger logger, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.BatchCompleted, LogLevel.Information,
        "Refresh batch {Status}: {Succeeded} refreshed, {Failed} failed, {Skipped} skipped in {DurationMs:F1} ms")]
    public static partial void BatchCompleted(ILogger logger, RefreshBatchStatus status, int succeeded, int failed, int skipped, double durationMs);

    [LoggerMessage(MatViewRefreshEventIds.BatchFailedToStart, LogLevel.Error,
        "Refresh batch failed before refreshing anything: the catalog could not be read (SQLSTATE {SqlState}: {ErrorMessage})")]
    public static partial void BatchFailedToStart(ILogger logger, string? sqlState, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.SchemaEnsured, LogLevel.Debug,
        "Refresh log schema {Schema} is in place")]
    public static partial void SchemaEnsured(ILogger logger, string schema);

    [LoggerMessage(MatViewRefreshEventIds.SchemaRepaired, LogLevel.Warning,
        "Refresh of {Target} found the refresh log schema {Schema} damaged (SQLSTATE {SqlState}: {ErrorMessage}); re-created it and retrying")]
    public static partial void SchemaRepaired(ILogger logger, string target, string schema, string sqlState, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.HistoryPruned, LogLevel.Debug,
        "Pruned {Rows} refresh history row(s) older than {Retention}")]
    public static partial void HistoryPruned(ILogger logger, long rows, TimeSpan retention);

    [LoggerMessage(MatViewRefreshEventIds.HistoryPruneFailed, LogLevel.Warning,
        "Could not prune the refresh history (the refresh itself succeeded): {ErrorMessage}")]
    public static partial void HistoryPruneFailed(ILogger logger, string errorMessage);

    [LoggerMessage(MatViewRefreshEventIds.DebounceScheduled, LogLevel.Debug,
        "Debounced refresh of {Key} scheduled for {DueAt:O}")]
    public static partial void DebounceScheduled(ILogger logger, string key, DateTimeOffset dueAt);

    [LoggerMessage(MatViewRefreshEventIds.DebounceSkipped, LogLevel.Information,
        "Skipped debounced refresh of {Key}: {Reason}")]
    public static partial void DebounceSkipped(ILogger logger, string key, string reason);

    [LoggerMessage(MatViewRefreshEventIds.DebounceRunFailed, LogLevel.Warning,
        "Debounced refresh of {Key} (scope {Scope}) failed ({Failures} so far): {Error}; retrying in {DelayMs:F0} ms")]
    public static partial void DebounceRunFailed(ILogger logger, string key, string scope, int failures, string error, double delayMs);

    [LoggerMessage(MatViewRefreshEventIds.DebounceRunGaveUp, LogLevel.Error,
        "Debounced refresh of {Key} (scope {Scope}) failed for good after {Retries} retries: {Error}")]
    public static partial void DebounceRunGaveUp(ILogger logger, string key, string scope, int retries, string error);

    [LoggerMessage(MatViewRefreshEventIds.DebounceCoalesced, LogLevel.Information,
        "Debounced refresh of {Key} (scope {Scope}) found the target busy on another instance; it will run again after it")]
    public static partial void DebounceCoalesced(ILogger logger, string key, string scope);

    [LoggerMessage(MatViewRefreshEventIds.DebounceFlushIncomplete, LogLevel.Warning,
        "{Count} debounced refresh(es) did not finish before shutdown: {Keys}")]
    public static partial void DebounceFlushIncomplete(ILogger logger, int count, string keys);

    [LoggerMessage(MatViewRefreshEventIds.DebounceDisabled, LogLevel.Warning,
        "Debounced refreshes are disabled by {Variable}")]
    public static partial void DebounceDisabled(ILogger logger, string variable);

    [LoggerMessage(MatViewRefreshEventIds.DebounceBookkeepingFailed, LogLevel.Error,
        "Bookkeeping after the debounced refresh of {Key} failed ({Error}); its tickets are completed and the key starts afresh")]
    public static partial void DebounceBookkeepingFailed(ILogger logger, string key, string error, Exception exception);

    [LoggerMessage(MatViewRefreshEventIds.SchedulerStarted, LogLevel.Information,
        "Refresh scheduler started with {Count} enabled schedule(s)")]
    public static partial void SchedulerStarted(ILogger logger, int count);

    [LoggerMessage(MatViewRefreshEventIds.SchedulerStopped, LogLevel.Information,
        "Refresh scheduler stopped after {Uptime}: {Runs} run(s), {Failed} failed, {Skipped} tick(s) skipped")]
    public static partial void SchedulerStopped(ILogger logger, TimeSpan uptime, long runs, long failed, long skipped);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleRunCompleted, LogLevel.Information,
        "Schedule {Schedule} run for tick {Tick:O}: {Outcome} in {DurationMs:F1} ms")]
    public static partial void ScheduleRunCompleted(ILogger logger, string schedule, DateTimeOffset? tick, RefreshScheduleOutcome outcome, double durationMs);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleRunFailed, LogLevel.Error,
        "Schedule {Schedule} run for tick {Tick:O} {Outcome}: {Error}")]
    public static partial void ScheduleRunFailed(ILogger logger, string schedule, DateTimeOffset? tick, RefreshScheduleOutcome outcome, string error);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleTickSkipped, LogLevel.Warning,
        "Schedule {Schedule} skipped tick {Tick:O}: its previous run is still going")]
    public static partial void ScheduleTickSkipped(ILogger logger, string schedule, DateTimeOffset tick);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleTickClaimedElsewhere, LogLevel.Debug,
        "Schedule {Schedule} tick {Tick:O} was claimed by another instance")]
    public static partial void ScheduleTickClaimedElsewhere(ILogger logger, string schedule, DateTimeOffset? tick);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleStopTimedOut, LogLevel.Warning,
        "Schedule {Schedule} run did not finish within {Timeout} of the stop; cancelling it")]
    public static partial void ScheduleStopTimedOut(ILogger logger, string schedule, TimeSpan timeout);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleCatchUp, LogLevel.Information,
        "Schedule {Schedule} catches up missed tick {Tick:O}")]
    public static partial void ScheduleCatchUp(ILogger logger, string schedule, DateTimeOffset tick);

    [LoggerMessage(MatViewRefreshEventIds.ScheduleDataFreshnessFailed, LogLevel.Warning,
        "Schedule {Schedule} could not read the newest {Column}: {Error}")]
    public static partial void ScheduleDataFreshnessFailed(ILogger logger, string schedule, string column, string error);
}
