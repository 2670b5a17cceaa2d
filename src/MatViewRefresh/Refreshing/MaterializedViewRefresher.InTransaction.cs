using System.Diagnostics;

namespace MatViewRefresh;

/// <summary>
/// Refreshes sent in a caller's transaction, several to one transaction: the durable worker's grouped runs
/// (<see cref="DurableRefreshOptions.MaxTargetsPerRun"/>). The SQL is a single refresh's first attempt — the target's lock,
/// timeouts, the refresh, its log and history rows — and the result is logged and counted as <see cref="RefreshAsync"/>'s; what
/// differs is that the caller sends it, commits it, and retries nothing (a failed group is run again one target at a time, through
/// <see cref="RefreshAsync"/>).
/// </summary>
internal sealed partial class MaterializedViewRefresher
{
    /// <summary>
    /// Whether refreshes may be sent in a caller's transaction: only when they would reach the database unchanged, through the
    /// default executor. With a replaced <see cref="IRefreshExecutor"/> every refresh goes through it, one at a time.
    /// </summary>
    internal bool RunsInCallerTransactions => _executor is NpgsqlRefreshExecutor;

    /// <summary>
    /// Checks and builds a refresh for a caller's transaction as <see cref="RefreshAsync"/>'s first attempt would: the options
    /// validated, the log schema ensured, a function target's signature checked (cached). Throws what <see cref="RefreshAsync"/>
    /// throws for bad input and missing functions.
    /// </summary>
    /// <remarks>
    /// A function target's command leaves out its log and history rows and reports what they would hold; the caller writes them
    /// with <see cref="RefreshSql.RecordMany"/> for all of its function targets at once, before it commits.
    /// </remarks>
    /// <returns>The command, and for a function target whether its function returns a set (it cannot then be one row of a call of many).</returns>
    internal async Task<(RefreshCommand Command, bool ReturnsSet)> PrepareInTransactionAsync(RefreshTarget target, RefreshOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        var requested = Validate(target, options);
        target = target.WithDefaultSchema(_options.DefaultSchema);
        if (_options.AutoCreateSchema)
        {
            await _schema.EnsureAsync(cancellationToken).ConfigureAwait(false);
        }

        if (target.Kind != RefreshTargetKind.Function)
        {
            return (CommandOf(new RefreshRun(target, requested, options) { Attempts = 1 }), false);
        }

        var returnsSet = await _catalog.ValidateFunctionAsync(target, cancellationToken).ConfigureAwait(false);
        return (RefreshSql.FunctionLogDeferred(
            target, 1, !options.SkipIfBusy, options.LockTimeout ?? _options.LockTimeout, options.StatementTimeout ?? _options.StatementTimeout, options.Trigger, _options.Schema),
            returnsSet);
    }

    /// <summary>
    /// The result of a refresh that committed in the caller's transaction (its times from the database clock when it reported
    /// them): logged, traced (a span with its own start and end), counted in the metrics, and history pruned when due, as
    /// <see cref="RefreshAsync"/> does.
    /// </summary>
    internal async Task<RefreshResult> CommittedInTransactionAsync(
        RefreshCommand command, RefreshOptions options, RefreshExecution execution, DateTimeOffset startedAt, DateTimeOffset finishedAt)
    {
        var target = command.Target;
        if (execution.RefreshedAt is { } refreshedAt && execution.ServerDuration is { } took)
        {
            (startedAt, finishedAt) = (refreshedAt - took, refreshedAt);
        }

        var reason = execution.ModeReason ?? (target.Kind == RefreshTargetKind.Function ? "function call" : null);
        var result = Reported(
            new RefreshResult
            {
                Target = target,
                Outcome = RefreshOutcome.Succeeded,
                RequestedMode = options.Mode ?? _options.DefaultMode,
                ModeUsed = execution.Mode,
                ModeReason = reason,
                Attempts = 1,
                StartedAt = startedAt,
                FinishedAt = finishedAt,
            },
            execution);
        Log.RefreshSucceeded(_logger, target.ToString(), RefreshTelemetry.ModeTag(result.ModeUsed), reason ?? string.Empty, result.Duration.TotalMilliseconds, 1);

        // Its span, after the fact (named as RefreshAsync's: by the target, never its scope).
        using (var activity = RefreshTelemetry.ActivitySource.StartActivity("refresh " + target.LogName, ActivityKind.Internal, default(ActivityContext), startTime: startedAt))
        {
            if (activity is not null)
            {
                activity.SetTag("matview_refresh.target", target.LogName);
                if (target.Scope.Length > 0)
                {
                    activity.SetTag("matview_refresh.scope", target.Scope);
                }

                activity.SetTag("matview_refresh.requested_mode", RefreshTelemetry.ModeTag(result.RequestedMode));
                activity.SetEndTime(finishedAt.UtcDateTime);
            }

            Finish(result, activity);
        }

        await PruneIfDueAsync(target).ConfigureAwait(false);
        return result;
    }
}
