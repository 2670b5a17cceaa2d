using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Polly;

namespace MatViewRefresh;

/// <summary>The refresh engine: catalog-driven mode choice, resilience pipeline, one-round-trip refresh transactions, batches in dependency order.</summary>
internal sealed class MaterializedViewRefresher : IMaterializedViewRefresher
{
    private static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);

    private readonly IRefreshExecutor _executor;
    private readonly IMatViewCatalog _catalog;
    private readonly RefreshLogSchema _schema;
    private readonly MatViewRefreshOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private long _nextPruneTicks;

    public MaterializedViewRefresher(
        IRefreshExecutor executor,
        IMatViewCatalog catalog,
        RefreshLogSchema schema,
        IOptions<MatViewRefreshOptions> options,
        TimeProvider time,
        ILogger<MaterializedViewRefresher> logger)
    {
        _executor = executor;
        _catalog = catalog;
        _schema = schema;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _pipeline = RefreshPipelineFactory.Create(_options, time, logger);
    }

    public async Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= RefreshOptions.Default;
        var requested = options.Mode ?? _options.DefaultMode;
        (RefreshMode? Mode, string Reason) decision;
        if (target.Kind == RefreshTargetKind.Function)
        {
            await _catalog.ValidateFunctionAsync(target, cancellationToken).ConfigureAwait(false);
            decision = (null, "function call");
        }
        else
        {
            decision = ModeDecision.Decide(requested, await _catalog.DescribeAsync(target.Name, cancellationToken).ConfigureAwait(false));
        }

        await _schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        return await RefreshResolvedAsync(target, requested, decision.Mode, decision.Reason, options, cancellationToken).ConfigureAwait(false);
    }

    public async Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        var graph = await _catalog.LoadGraphAsync(cancellationToken).ConfigureAwait(false);
        return RefreshPlanner.Plan(graph, selection, options?.Mode ?? _options.DefaultMode);
    }

    public async Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        options ??= RefreshOptions.Default;
        var started = _time.GetTimestamp();
        var graph = await _catalog.LoadGraphAsync(cancellationToken).ConfigureAwait(false);
        var plan = RefreshPlanner.Plan(graph, selection, options.Mode ?? _options.DefaultMode);
        await _schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);

        var maxParallelism = options.MaxParallelism ?? _options.MaxParallelism;
        if (maxParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), maxParallelism, $"MaxParallelism is {maxParallelism}; it must be at least 1.");
        }

        var done = new Dictionary<QualifiedName, RefreshResult>();
        var running = new Dictionary<Task<RefreshResult>, RefreshPlanStep>();
        var waiting = plan.Steps.ToList();
        try
        {
            while (waiting.Count > 0 || running.Count > 0)
            {
                for (var i = 0; i < waiting.Count;)
                {
                    var step = waiting[i];
                    if (!step.DependsOn.All(done.ContainsKey))
                    {
                        i++;
                        continue;
                    }

                    var failedUpstream = step.DependsOn.FirstOrDefault(d => done[d].Outcome is RefreshOutcome.Failed or RefreshOutcome.Skipped);
                    if (failedUpstream is not null)
                    {
                        done[step.View] = Skipped(step, failedUpstream, done[failedUpstream].Outcome, options);
                        waiting.RemoveAt(i);
                        i = 0; // a skip may unblock earlier steps
                        continue;
                    }

                    if (running.Count >= maxParallelism)
                    {
                        break;
                    }

                    running.Add(RefreshResolvedAsync(RefreshTarget.View(step.View), options.Mode ?? _options.DefaultMode, step.Mode, step.ModeReason, options, cancellationToken), step);
                    waiting.RemoveAt(i);
                }

                if (running.Count == 0)
                {
                    // Nothing runs and nothing could start: only a dependency cycle does that, and the catalog cannot hold one.
                    if (waiting.Count > 0 && waiting.All(w => !w.DependsOn.All(done.ContainsKey)))
                    {
                        throw new InvalidOperationException("The refresh plan has a dependency cycle among: " + string.Join(", ", waiting.Select(w => w.View)));
                    }

                    continue;
                }

                var finished = await Task.WhenAny(running.Keys).ConfigureAwait(false);
                var finishedStep = running[finished];
                running.Remove(finished);
                done[finishedStep.View] = await finished.ConfigureAwait(false);
            }
        }
        finally
        {
            if (running.Count > 0)
            {
                // Cancelled or failed unexpectedly: let the refreshes already started settle before returning.
                await Task.WhenAll(running.Keys).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
            }
        }

        var results = plan.Steps.Select(s => done[s.View]).ToList();
        var batch = new RefreshBatchResult
        {
            Status = RefreshBatchResult.StatusOf(results),
            Results = results,
            Duration = _time.GetElapsedTime(started),
        };
        Log.BatchCompleted(
            _logger,
            batch.Status,
            results.Count(r => r.Success),
            results.Count(r => r.Outcome == RefreshOutcome.Failed),
            results.Count(r => r.Outcome == RefreshOutcome.Skipped),
            batch.Duration.TotalMilliseconds);
        return batch;
    }

    private RefreshResult Skipped(RefreshPlanStep step, QualifiedName upstream, RefreshOutcome upstreamOutcome, RefreshOptions options)
    {
        var now = _time.GetUtcNow();
        var reason = $"depends on {upstream}, which {(upstreamOutcome == RefreshOutcome.Failed ? "failed" : "was skipped")}; not refreshed from stale input";
        Log.RefreshSkipped(_logger, step.View.ToString(), reason);
        var result = new RefreshResult
        {
            Target = RefreshTarget.View(step.View),
            Outcome = RefreshOutcome.Skipped,
            RequestedMode = options.Mode ?? _options.DefaultMode,
            StartedAt = now,
            FinishedAt = now,
            Error = new RefreshError(null, "Skipped: " + reason),
        };
        RefreshTelemetry.Record(result);
        return result;
    }

    private async Task<RefreshResult> RefreshResolvedAsync(
        RefreshTarget target, RefreshMode requested, RefreshMode? mode, string reason, RefreshOptions options, CancellationToken cancellationToken)
    {
        var name = target.ToString();
        var startedAt = _time.GetUtcNow();
        var started = _time.GetTimestamp();
        var attempts = 0;
        using var activity = RefreshTelemetry.ActivitySource.StartActivity("refresh " + name);
        activity?.SetTag("matview_refresh.target", name);
        activity?.SetTag("matview_refresh.requested_mode", RefreshTelemetry.ModeTag(requested));

        RefreshResult Result(RefreshOutcome outcome) => new()
        {
            Target = target,
            Outcome = outcome,
            RequestedMode = requested,
            ModeUsed = mode,
            ModeReason = reason,
            Attempts = attempts,
            StartedAt = startedAt,
            FinishedAt = startedAt + _time.GetElapsedTime(started),
        };

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RefreshPipelineFactory.TargetKey, name);
        try
        {
            var execution = await _pipeline.ExecuteAsync(
                async ctx =>
                {
                    attempts++;
                    try
                    {
                        return await RunAsync(target, mode, attempts, options, ctx.CancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (requested == RefreshMode.Auto && mode == RefreshMode.Concurrent && TransientErrors.IsConcurrentlyRefused(e, out var why))
                    {
                        // The catalog said CONCURRENTLY would work but the server disagreed (index dropped, view truncated):
                        // the reason is specific and a full refresh does not share it.
                        _catalog.Invalidate(target.Name);
                        mode = RefreshMode.Full;
                        reason = "fell back to full: " + why;
                        Log.RefreshFellBack(_logger, name, reason);
                        return await RunAsync(target, mode, attempts, options, ctx.CancellationToken).ConfigureAwait(false);
                    }
                },
                context).ConfigureAwait(false);

            if (target.Kind == RefreshTargetKind.MaterializedView)
            {
                _catalog.MarkPopulated(target.Name);
            }

            var result = Result(RefreshOutcome.Succeeded) with
            {
                RefreshedAt = execution.RefreshedAt,
                ServerDuration = execution.ServerDuration,
                RowCount = execution.RowCount,
            };
            Log.RefreshSucceeded(_logger, name, RefreshTelemetry.ModeTag(mode), reason, result.Duration.TotalMilliseconds, attempts);
            return Finish(result, activity);
        }
        catch (PostgresException e) when (e.SqlState == TransientErrors.TargetBusy)
        {
            Log.RefreshCoalesced(_logger, name);
            return Finish(
                Result(RefreshOutcome.Coalesced) with { ModeUsed = null, ModeReason = "another refresh of this target is running; coalesced into it" },
                activity);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "cancelled");
            throw;
        }
        catch (Exception e)
        {
            var error = TransientErrors.ToError(e);
            if (requested == RefreshMode.Concurrent && TransientErrors.IsConcurrentlyRefused(e, out var why))
            {
                error = error with
                {
                    Message = $"Cannot refresh {name} CONCURRENTLY: {why}. Create a unique index without WHERE on plain columns of the view, or use RefreshMode.Auto to fall back to a full refresh. Server said: {error.Message}",
                };
            }

            var result = Result(RefreshOutcome.Failed) with { Error = error };
            Log.RefreshFailed(_logger, name, RefreshTelemetry.ModeTag(mode), attempts, result.Duration.TotalMilliseconds, error.SqlState, error.Message);
            await RecordFailureAsync(result, options.Trigger).ConfigureAwait(false);
            return Finish(result, activity);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private Task<RefreshExecution> RunAsync(RefreshTarget target, RefreshMode? mode, int attempt, RefreshOptions options, CancellationToken cancellationToken)
    {
        var command = RefreshSql.Refresh(
            target,
            mode,
            attempt,
            waitForLock: !options.SkipIfBusy,
            options.LockTimeout ?? _options.LockTimeout,
            options.StatementTimeout ?? _options.StatementTimeout,
            options.Trigger,
            _options.Schema,
            _options.RecordRowCount,
            PruneDue() ? _options.HistoryRetention : null);
        return _executor.ExecuteAsync(command, cancellationToken);
    }

    private bool PruneDue()
    {
        var now = _time.GetUtcNow().UtcTicks;
        var next = Interlocked.Read(ref _nextPruneTicks);
        return now >= next && Interlocked.CompareExchange(ref _nextPruneTicks, now + PruneEvery.Ticks, next) == next;
    }

    private async Task RecordFailureAsync(RefreshResult result, string trigger)
    {
        try
        {
            var command = RefreshSql.RecordFailure(
                result.Target, result.ModeUsed, result.Attempts, trigger, _options.Schema, result.StartedAt, result.Duration, result.Error!);
            await _executor.ExecuteAsync(command, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            Log.FailureNotRecorded(_logger, result.Target.ToString(), e.Message);
        }
    }

    private static RefreshResult Finish(RefreshResult result, Activity? activity)
    {
        if (activity is not null)
        {
            activity.SetTag("matview_refresh.outcome", result.Outcome.ToString());
            activity.SetTag("matview_refresh.mode", RefreshTelemetry.ModeTag(result.ModeUsed));
            activity.SetTag("matview_refresh.attempts", result.Attempts);
            if (result.Outcome == RefreshOutcome.Failed)
            {
                activity.SetStatus(ActivityStatusCode.Error, result.Error?.ToString());
            }
        }

        RefreshTelemetry.Record(result);
        return result;
    }
}
