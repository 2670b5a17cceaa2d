namespace MatViewRefresh;

/// <summary>Stable event ids of MatViewRefresh's log messages, grouped by area.</summary>
public static class MatViewRefreshEventIds
{
    /// <summary>A view was refreshed.</summary>
    public const int RefreshSucceeded = 1000;

    /// <summary>A refresh failed after its last attempt.</summary>
    public const int RefreshFailed = 1001;

    /// <summary>A refresh attempt failed transiently and will be retried.</summary>
    public const int RefreshRetrying = 1002;

    /// <summary>Auto mode fell back from CONCURRENTLY to a full refresh.</summary>
    public const int RefreshFellBack = 1003;

    /// <summary>A refresh was coalesced into one already running.</summary>
    public const int RefreshCoalesced = 1004;

    /// <summary>A view of a batch was skipped because a view it depends on did not refresh.</summary>
    public const int RefreshSkipped = 1005;

    /// <summary>A failed refresh could not be written to the history.</summary>
    public const int FailureNotRecorded = 1006;

    /// <summary>Prepared statements failed (SQLSTATE 26000, a pooler in transaction mode): refreshes are sent unprepared from now on.</summary>
    public const int PreparedStatementsUnavailable = 1007;

    /// <summary>A batch finished.</summary>
    public const int BatchCompleted = 1100;

    /// <summary>A batch could not start: the catalog could not be read.</summary>
    public const int BatchFailedToStart = 1101;

    /// <summary>The refresh log schema was created or checked.</summary>
    public const int SchemaEnsured = 1200;

    /// <summary>A refresh found the log schema damaged (a table or function missing), re-created it and retried.</summary>
    public const int SchemaRepaired = 1201;

    /// <summary>Old history rows were pruned.</summary>
    public const int HistoryPruned = 1202;

    /// <summary>Pruning old history failed; the refresh that triggered it had succeeded.</summary>
    public const int HistoryPruneFailed = 1203;

    /// <summary>A debounced run was scheduled for a key.</summary>
    public const int DebounceScheduled = 2000;

    /// <summary>A debounce request was skipped (disabled, or the host is stopping).</summary>
    public const int DebounceSkipped = 2001;

    /// <summary>A debounced run failed and will be retried with backoff.</summary>
    public const int DebounceRunFailed = 2002;

    /// <summary>A debounced run failed for good; its ticket completes as failed.</summary>
    public const int DebounceRunGaveUp = 2003;

    /// <summary>A debounced run found its target busy on another instance; it runs again after it.</summary>
    public const int DebounceCoalesced = 2004;

    /// <summary>Pending debounced runs did not finish within the shutdown timeout.</summary>
    public const int DebounceFlushIncomplete = 2005;

    /// <summary>Debounced refreshes are disabled by the MATVIEWREFRESH_DISABLE kill switch.</summary>
    public const int DebounceDisabled = 2006;

    /// <summary>The bookkeeping after a debounced run failed; the run's tickets are completed and its key starts afresh.</summary>
    public const int DebounceBookkeepingFailed = 2007;

    /// <summary>The refresh scheduler started.</summary>
    public const int SchedulerStarted = 3000;

    /// <summary>The refresh scheduler stopped.</summary>
    public const int SchedulerStopped = 3001;

    /// <summary>A scheduled run finished (succeeded, partly succeeded or failed).</summary>
    public const int ScheduleRunCompleted = 3002;

    /// <summary>A scheduled run threw or was cancelled.</summary>
    public const int ScheduleRunFailed = 3003;

    /// <summary>A tick came while the schedule's previous run was still going, and was skipped.</summary>
    public const int ScheduleTickSkipped = 3004;

    /// <summary>Another instance claimed the tick; this instance did not run it.</summary>
    public const int ScheduleTickClaimedElsewhere = 3005;

    /// <summary>A run did not finish within its schedule's stop timeout and was cancelled.</summary>
    public const int ScheduleStopTimedOut = 3006;

    /// <summary>A tick missed while no instance ran is run at start (catch-up).</summary>
    public const int ScheduleCatchUp = 3007;

    /// <summary>The newest data timestamp of a schedule's views could not be read; the run itself is not affected.</summary>
    public const int ScheduleDataFreshnessFailed = 3008;

    /// <summary>Change capture: a target is watched (capture triggers installed or checked on its base tables).</summary>
    public const int WatchInstalled = 5100;

    /// <summary>Change capture: a target is no longer watched.</summary>
    public const int WatchRemoved = 5101;

    /// <summary>Change capture: a target of <c>MatViewRefresh:Watch</c> could not be watched when the host started.</summary>
    public const int WatchFailed = 5102;

    /// <summary>The MatViewRefresh endpoints are served without authorization (<c>AllowAnonymous</c>), logged at start (MatViewRefresh.AspNetCore).</summary>
    public const int EndpointsAllowAnonymous = 4000;

    /// <summary>An endpoint request could not reach the database; it answered 503 (MatViewRefresh.AspNetCore).</summary>
    public const int EndpointDatabaseUnavailable = 4001;

    /// <summary>The health check could not read the refresh log and reported unhealthy (MatViewRefresh.AspNetCore).</summary>
    public const int HealthCheckDatabaseUnavailable = 4100;

    /// <summary>The durable refresh worker started.</summary>
    public const int DurableWorkerStarted = 5000;

    /// <summary>A durable run succeeded and deleted the requests it covered (with its change-to-visible lag).</summary>
    public const int DurableRunSucceeded = 5001;

    /// <summary>A durable run failed; its requests stay and the target backs off exponentially (poison targets repeat this).</summary>
    public const int DurableRunFailed = 5002;

    /// <summary>Durable requests name a target this instance cannot resolve; left to other instances (logged once per target).</summary>
    public const int DurableTargetUnresolved = 5003;

    /// <summary>A durable run found another refresh of its target running; it runs again after it.</summary>
    public const int DurableRunCoalesced = 5004;

    /// <summary>The durable worker could not read the queue or LISTEN; it tries again.</summary>
    public const int DurablePollFailed = 5005;

    /// <summary>The durable refresh worker stopped.</summary>
    public const int DurableWorkerStopped = 5006;

    /// <summary>The queue remembers no more targets enqueued by this process.</summary>
    public const int DurableRememberedFull = 5007;

    /// <summary>A grouped durable run failed and rolled back; its targets run again one at a time.</summary>
    public const int DurableGroupFailed = 5008;

    /// <summary>The durable worker cannot use the <c>refresh_workers</c> table (missing, or no rights): it reads every due target, without shares.</summary>
    public const int DurableSharesUnavailable = 5009;

    /// <summary>A stopping durable worker could not remove itself from the workers sharing the queue; its row stops counting after a while.</summary>
    public const int DurableLeaveFailed = 5010;
}
