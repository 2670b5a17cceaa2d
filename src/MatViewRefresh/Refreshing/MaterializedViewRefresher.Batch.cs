using Npgsql;
using Polly;

namespace MatViewRefresh;

/// <summary>Batches: the plan of a selection in dependency order, and its refreshes, upstream failures skipping what depends on them.</summary>
internal sealed partial class MaterializedViewRefresher
{
    public async Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        var graph = await LoadGraphAsync(cancellationToken).ConfigureAwait(false);
        return RefreshPlanner.Plan(graph, selection.WithDefaultSchema(_options.DefaultSchema), options?.Mode ?? _options.DefaultMode);
    }

    /// <summary>The catalog's graph, read through the resilience pipeline (a transient failure is retried like a refresh).</summary>
    private async Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RefreshPipelineFactory.TargetKey, "(catalog)");
        try
        {
            return await _pipeline.ExecuteAsync(
                async (ctx, catalog) => await catalog.LoadGraphAsync(ctx.CancellationToken).ConfigureAwait(false),
                context,
                _catalog).ConfigureAwait(false);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    public async Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        options ??= RefreshOptions.Default;
        var maxParallelism = options.MaxParallelism ?? _options.MaxParallelism;
        if (maxParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), maxParallelism, $"MaxParallelism is {maxParallelism}; it must be at least 1.");
        }

        var requested = options.Mode ?? _options.DefaultMode;
        var started = _time.GetTimestamp();
        MatViewGraph graph;
        try
        {
            graph = await LoadGraphAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or Polly.Timeout.TimeoutRejectedException && !cancellationToken.IsCancellationRequested)
        {
            // The database could not be asked which views there are: a failed batch, like a failed refresh.
            var error = TransientErrors.ToError(e);
            Log.BatchFailedToStart(_logger, error.SqlState, error.Message);
            return new RefreshBatchResult { Status = RefreshBatchStatus.Failed, Results = [], Duration = _time.GetElapsedTime(started), Error = error };
        }

        var plan = RefreshPlanner.Plan(graph, selection.WithDefaultSchema(_options.DefaultSchema), requested);

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

                    running.Add(RefreshStepAsync(step, requested, options, cancellationToken), step);
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
        _metrics.Record(result);
        return result;
    }

    /// <summary>One step of a batch: a view dropped since the plan was made is a failed step, not an exception that ends the batch.</summary>
    private async Task<RefreshResult> RefreshStepAsync(RefreshPlanStep step, RefreshMode requested, RefreshOptions options, CancellationToken cancellationToken)
    {
        var target = RefreshTarget.View(step.View);
        var startedAt = _time.GetUtcNow();
        try
        {
            return await RefreshResolvedAsync(target, requested, options, cancellationToken).ConfigureAwait(false);
        }
        catch (MaterializedViewNotFoundException e)
        {
            var result = new RefreshResult
            {
                Target = target,
                Outcome = RefreshOutcome.Failed,
                RequestedMode = requested,
                StartedAt = startedAt,
                FinishedAt = _time.GetUtcNow(),
                Error = new RefreshError(TransientErrors.ViewMissing, e.Message, e),
            };
            Log.RefreshFailed(_logger, target.ToString(), RefreshTelemetry.ModeTag(requested), 0, result.Duration.TotalMilliseconds, TransientErrors.ViewMissing, e.Message);
            _metrics.Record(result);
            return result;
        }
    }
}
