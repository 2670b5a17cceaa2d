using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Polly;

namespace MatViewRefresh;

/// <summary>The refresh engine: catalog-driven mode choice, resilience pipeline, one-round-trip refresh transactions, batches in dependency order.</summary>
internal sealed partial class MaterializedViewRefresher : IMaterializedViewRefresher
{
    private static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);

    private readonly IRefreshExecutor _executor;
    private readonly IMatViewCatalog _catalog;
    private readonly RefreshLogSchema _schema;
    private readonly MatViewRefreshOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RefreshMetrics _metrics;
    private readonly ResiliencePipeline _pipeline;
    private long _nextPruneTimestamp = long.MinValue;

    public MaterializedViewRefresher(
        IRefreshExecutor executor,
        IMatViewCatalog catalog,
        RefreshLogSchema schema,
        IOptions<MatViewRefreshOptions> options,
        TimeProvider time,
        RefreshMetrics metrics,
        ILoggerFactory loggerFactory)
    {
        _executor = executor;
        _catalog = catalog;
        _schema = schema;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger<MaterializedViewRefresher>();
        _pipeline = RefreshPipelineFactory.Create(_options, time, loggerFactory, _logger);
    }

    public Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= RefreshOptions.Default;
        var requested = Validate(target, options);
        return RefreshResolvedAsync(target.WithDefaultSchema(_options.DefaultSchema), requested, options, cancellationToken);
    }

    /// <summary>Checks a single refresh's options (throwing what <see cref="RefreshAsync"/> documents); returns the mode requested.</summary>
    private RefreshMode Validate(RefreshTarget target, RefreshOptions options)
    {
        var requested = options.Mode ?? _options.DefaultMode;
        if (!Enum.IsDefined(requested))
        {
            throw new ArgumentOutOfRangeException(nameof(options), requested, $"Mode {requested} is not a refresh mode; use Auto, Full or Concurrent.");
        }

        if (target.Kind == RefreshTargetKind.Window)
        {
            ValidateWindowOptions(options);
        }

        return requested;
    }

    private static void ValidateWindowOptions(RefreshOptions options)
    {
        if (options.Strategy is { } strategy && !Enum.IsDefined(strategy))
        {
            throw new ArgumentOutOfRangeException(nameof(options), strategy, $"Strategy {strategy} is not a window strategy; use Smart, Incremental or Full.");
        }

        if (options.Days is < 1 or > MaxWindowDays)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Days, $"Days is {options.Days}; a window refresh replaces 1 to {MaxWindowDays} days (use a full refresh for all time).");
        }

        if (options.DayRanges is { } ranges)
        {
            if (ranges.Count == 0)
            {
                throw new ArgumentException("DayRanges is empty; give at least one day range, or leave DayRanges unset to refresh the last Days days.", nameof(options));
            }

            if (options.Days is { } days)
            {
                throw new ArgumentException($"Days is {days} and DayRanges is set; a window refresh replaces either the last Days days or the given DayRanges, not both.", nameof(options));
            }

            if (options.Strategy is { } chosen && chosen != WindowStrategy.Incremental)
            {
                throw new ArgumentException($"Strategy is {chosen} and DayRanges is set; the given days are refreshed incrementally (use Strategy Incremental or leave it unset).", nameof(options));
            }

            foreach (var range in ranges)
            {
                if (range.Last == DateOnly.MaxValue)
                {
                    throw new ArgumentOutOfRangeException(nameof(options), range, $"The day range {range} ends on the last representable day; a window refresh needs the day after its last day.");
                }
            }
        }

        if (options.FullRefreshAfter is { } after && after <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), after, $"FullRefreshAfter is {after}; it must be positive.");
        }

        _ = LocalDays.FindZone(options.TimeZone ?? DefaultWindowTimeZone);
    }

    /// <summary>The defaults of a window refresh (see <see cref="RefreshOptions"/>).</summary>
    internal const int DefaultWindowDays = 2;

    internal const int MaxWindowDays = 36_600;

    internal const string DefaultWindowTimeZone = "UTC";

    internal static readonly TimeSpan DefaultFullRefreshAfter = TimeSpan.FromDays(1);

    private async Task<RefreshResult> RefreshResolvedAsync(RefreshTarget target, RefreshMode requested, RefreshOptions options, CancellationToken cancellationToken)
    {
        var name = target.ToString();
        var startedAt = _time.GetUtcNow();
        var started = _time.GetTimestamp();
        var run = new RefreshRun(target, requested, options);

        // Named by the target, never by its scope: span names must stay low-cardinality (and a scope may name a person).
        using var activity = RefreshTelemetry.ActivitySource.StartActivity("refresh " + target.LogName);
        if (activity is not null)
        {
            activity.SetTag("matview_refresh.target", target.LogName);
            if (target.Scope.Length > 0)
            {
                activity.SetTag("matview_refresh.scope", target.Scope);
            }

            activity.SetTag("matview_refresh.requested_mode", RefreshTelemetry.ModeTag(requested));
        }

        RefreshResult Result(RefreshOutcome outcome) => new()
        {
            Target = target,
            Outcome = outcome,
            RequestedMode = requested,
            ModeUsed = run.Mode is RefreshMode.Auto ? null : run.Mode,
            ModeReason = run.Reason,
            Attempts = run.Attempts,
            StartedAt = startedAt,
            FinishedAt = startedAt + _time.GetElapsedTime(started),
        };

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RefreshPipelineFactory.TargetKey, name);
        try
        {
            var execution = await _pipeline.ExecuteAsync(
                static (ctx, state) => state.Refresher.AttemptAsync(state.Run, ctx.CancellationToken),
                context,
                (Refresher: this, Run: run)).ConfigureAwait(false);

            var result = Reported(Result(RefreshOutcome.Succeeded), execution);
            Log.RefreshSucceeded(_logger, name, RefreshTelemetry.ModeTag(result.ModeUsed), run.Reason ?? string.Empty, result.Duration.TotalMilliseconds, run.Attempts);
            await PruneIfDueAsync(target).ConfigureAwait(false);
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
        catch (Exception e) when (e is not (MaterializedViewNotFoundException or RefreshFunctionNotFoundException or ArgumentException))
        {
            var error = TransientErrors.ToError(e);
            if (run.ConcurrentlyRefusedBecause is { } why && requested == RefreshMode.Concurrent)
            {
                // PostgreSQL's message first, then what to do about it.
                error = error with
                {
                    Message = $"{error.Message} ({name} cannot be refreshed CONCURRENTLY: {why}. " +
                        (why.StartsWith(ModeDecision.NotPopulated, StringComparison.Ordinal)
                            ? "Refresh it once without CONCURRENTLY, or use RefreshMode.Auto.)"
                            : "Create a unique index without WHERE on plain columns of the view, or use RefreshMode.Auto to fall back to a full refresh.)"),
                };
            }

            var result = Result(RefreshOutcome.Failed) with { Error = error };
            Log.RefreshFailed(_logger, name, RefreshTelemetry.ModeTag(result.ModeUsed ?? run.Mode), run.Attempts, result.Duration.TotalMilliseconds, error.SqlState, error.Message);
            await RecordFailureAsync(result, run.Mode, options.Trigger).ConfigureAwait(false);
            return Finish(result, activity);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>
    /// One attempt, run by the resilience pipeline: schema and function checks, then the refresh transaction. A damaged
    /// log schema is re-created once and the refresh sent again; an Auto refresh the server refuses CONCURRENTLY for the
    /// view's own reasons (a race with an index being dropped) is sent again as a full refresh.
    /// </summary>
    private async ValueTask<RefreshExecution> AttemptAsync(RefreshRun run, CancellationToken cancellationToken)
    {
        run.Attempts++;
        var target = run.Target;
        if (_options.AutoCreateSchema)
        {
            await _schema.EnsureAsync(cancellationToken).ConfigureAwait(false);
        }

        if (target.Kind == RefreshTargetKind.Function)
        {
            await _catalog.ValidateFunctionAsync(target, cancellationToken).ConfigureAwait(false);
        }

        var repaired = false;
        while (true)
        {
            Exception failure;
            try
            {
                var execution = await _executor.ExecuteAsync(CommandOf(run), cancellationToken).ConfigureAwait(false);
                if (execution.Mode is { } chosen)
                {
                    run.Mode = chosen;
                }

                run.Reason = run.FallbackReason ?? execution.ModeReason ?? run.Reason;
                return execution;
            }
            catch (PostgresException e) when (e.SqlState == TransientErrors.ViewMissing)
            {
                throw await _catalog.NotFoundAsync(target.Name, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e)
            {
                failure = e;
            }

            if (!repaired && _options.AutoCreateSchema && TransientErrors.IsMissingLogObject(failure, _options.Schema))
            {
                repaired = true;
                var pg = (PostgresException)failure;
                try
                {
                    await _schema.EnsureAsync(cancellationToken, force: true).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException && !cancellationToken.IsCancellationRequested)
                {
                    // The repair failed too (no CREATE privilege, say): what the caller needs to see is the original error.
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                }

                Log.SchemaRepaired(_logger, target.ToString(), _options.Schema, pg.SqlState, pg.MessageText);
                continue;
            }

            // Only a CONCURRENTLY statement can be refused for being concurrent: an explicit Concurrent request, or Auto when
            // the server chose it. (A full refresh also fails with 55000 when a view it reads is not populated.)
            if (target.Kind == RefreshTargetKind.MaterializedView
                && (run.Mode == RefreshMode.Concurrent || (run.Mode == RefreshMode.Auto && TransientErrors.FailedConcurrently(failure)))
                && TransientErrors.MayBeConcurrentlyRefused(failure))
            {
                run.ConcurrentlyRefusedBecause = TransientErrors.ConcurrentlyRefusedBecause(
                    await _catalog.FindAsync(target.Name, cancellationToken).ConfigureAwait(false), ((PostgresException)failure).SqlState);
                if (run.ConcurrentlyRefusedBecause is { } why && run.Requested == RefreshMode.Auto)
                {
                    // The catalog said CONCURRENTLY would work but the server disagreed (an index dropped meanwhile):
                    // the reason is the view's own and a full refresh does not share it.
                    run.Mode = RefreshMode.Full;
                    run.FallbackReason = run.Reason = "fell back to full: " + why;
                    Log.RefreshFellBack(_logger, target.ToString(), run.Reason);
                    continue;
                }
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary><paramref name="result"/> with what the refresh transaction reported.</summary>
    private static RefreshResult Reported(RefreshResult result, RefreshExecution execution) => result with
    {
        DataAsOf = execution.DataAsOf,
        RefreshedAt = execution.RefreshedAt,
        ServerDuration = execution.ServerDuration,
        RowCount = execution.RowCount,
        StrategyUsed = execution.Strategy,
        RowsDeleted = execution.RowsDeleted,
        RowsInserted = execution.RowsInserted,
    };

    /// <summary>The refresh transaction of the run's next attempt.</summary>
    private RefreshCommand CommandOf(RefreshRun run) => run.Target.Kind == RefreshTargetKind.Window ? WindowCommand(run) : RefreshSql.Refresh(
        run.Target,
        run.Mode,
        run.Attempts,
        waitForLock: !run.Options.SkipIfBusy,
        run.Options.LockTimeout ?? _options.LockTimeout,
        run.Options.StatementTimeout ?? _options.StatementTimeout,
        run.Options.Trigger,
        _options.Schema,
        _options.RecordRowCount);

    private RefreshCommand WindowCommand(RefreshRun run) => run.Options.DayRanges is { } ranges
        ? RefreshSql.WindowDays(
            run.Target,
            DayRanges.Merge(ranges),
            run.Options.TimeZone ?? DefaultWindowTimeZone,
            run.Attempts,
            waitForLock: !run.Options.SkipIfBusy,
            run.Options.LockTimeout ?? _options.LockTimeout,
            run.Options.StatementTimeout ?? _options.StatementTimeout,
            run.Options.Trigger,
            _options.Schema)
        : RefreshSql.Window(
        run.Target,
        run.Options.Strategy ?? WindowStrategy.Smart,
        LocalWindow.LastDays(_time.GetUtcNow(), run.Options.Days ?? DefaultWindowDays, run.Options.TimeZone ?? DefaultWindowTimeZone),
        run.Options.FullRefreshAfter ?? DefaultFullRefreshAfter,
        run.Attempts,
        waitForLock: !run.Options.SkipIfBusy,
        run.Options.LockTimeout ?? _options.LockTimeout,
        run.Options.StatementTimeout ?? _options.StatementTimeout,
        run.Options.Trigger,
        _options.Schema);

    private async Task PruneIfDueAsync(RefreshTarget target)
    {
        var now = _time.GetTimestamp();
        var next = Interlocked.Read(ref _nextPruneTimestamp);
        if (now < next || Interlocked.CompareExchange(ref _nextPruneTimestamp, now + (long)(PruneEvery.TotalSeconds * _time.TimestampFrequency), next) != next)
        {
            return;
        }

        try
        {
            var execution = await _executor.ExecuteAsync(RefreshSql.Prune(target, _options.Schema, _options.HistoryRetention), CancellationToken.None).ConfigureAwait(false);
            Log.HistoryPruned(_logger, execution.RowCount ?? 0, _options.HistoryRetention);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            Log.HistoryPruneFailed(_logger, e.Message);
        }
    }

    private async Task RecordFailureAsync(RefreshResult result, RefreshMode? mode, string trigger)
    {
        try
        {
            var command = RefreshSql.RecordFailure(
                result.Target, result.ModeUsed ?? mode, result.Attempts, trigger, _options.Schema, result.StartedAt, result.Duration, result.Error!);
            await _executor.ExecuteAsync(command, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            Log.FailureNotRecorded(_logger, result.Target.ToString(), e.Message);
        }
    }

    private RefreshResult Finish(RefreshResult result, Activity? activity)
    {
        if (activity is not null)
        {
            activity.SetTag("matview_refresh.outcome", result.Outcome.ToString());
            activity.SetTag("matview_refresh.mode", RefreshTelemetry.ResultModeTag(result));
            activity.SetTag("matview_refresh.attempts", result.Attempts);
            if (result.Outcome == RefreshOutcome.Failed)
            {
                activity.SetStatus(ActivityStatusCode.Error, result.Error?.ToString());
            }
        }

        _metrics.Record(result);
        return result;
    }

    /// <summary>The state of one refresh across its attempts.</summary>
    private sealed class RefreshRun(RefreshTarget target, RefreshMode requested, RefreshOptions options)
    {
        public RefreshTarget Target { get; } = target;

        public RefreshMode Requested { get; } = requested;

        public RefreshOptions Options { get; } = options;

        public int Attempts { get; set; }

        /// <summary>What is asked of the server (Auto: the server decides), then what it ran.</summary>
        public RefreshMode? Mode { get; set; } = target.Kind == RefreshTargetKind.MaterializedView ? requested : null;

        public string? Reason { get; set; } = target.Kind == RefreshTargetKind.Function ? "function call" : null;

        public string? FallbackReason { get; set; }

        public string? ConcurrentlyRefusedBecause { get; set; }
    }
}
