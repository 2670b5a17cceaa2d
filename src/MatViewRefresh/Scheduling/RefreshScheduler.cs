using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>The hosted scheduler behind <see cref="IRefreshScheduler"/> (see its remarks and DESIGN.md "Schedules across instances").</summary>
/// <remarks>
/// One timer per enabled schedule, armed for the next nominal tick (plus jitter). When it fires the next tick is armed
/// first, then the tick runs unless the schedule is still running (skipped and counted). A run claims its tick in the
/// database before refreshing; an instance that loses the claim does nothing. A run that wins its claim then takes
/// the schedule's row in <c>schedule_runs</c> for <see cref="RefreshScheduleOptions.RunLease"/> (released at its end);
/// when another instance holds it, the run is skipped and counted, so a schedule never overlaps itself across instances. Timers and runs do not capture the
/// caller's execution context. Runs are started outside the lock, so an inline task factory cannot reenter it.
/// </remarks>
internal sealed class RefreshScheduler : IRefreshScheduler, IDisposable
{
    private static readonly TimeSpan MinDelay = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromDays(1);
    private readonly object _gate = new();
    private readonly SortedDictionary<string, ScheduleState> _states = new(StringComparer.OrdinalIgnoreCase);
    private readonly IMaterializedViewRefresher _refresher;
    private readonly IScheduleTickStore _ticks;
    private readonly IRefreshTaskFactory _tasks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double> _random;
    private readonly TimerCallback _onTimer;
    private bool _started;
    private long _startedAt;
    private long _runs;
    private long _succeeded;
    private long _failed;
    private long _skipped;
    private long _durationTicks;
    private RefreshSchedulerMetrics? _lastMetrics;

    public RefreshScheduler(
        IMaterializedViewRefresher refresher,
        IScheduleTickStore ticks,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<RefreshScheduler> logger)
    {
        _refresher = refresher;
        _ticks = ticks;
        _tasks = tasks;
        _time = time;
        _logger = logger;
        _random = options.Value.Randomizer;
        _onTimer = OnTimer;
        var failures = new List<string>();
        foreach (var (name, schedule) in options.Value.Schedules)
        {
            if (ScheduleDefinition.Create(name, schedule, failures) is { } definition)
            {
                _states[name] = new ScheduleState(definition);
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(MatViewRefreshOptions), failures);
        }
    }

    public bool IsStarted
    {
        get
        {
            lock (_gate)
            {
                return _started;
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        var launches = new List<(ScheduleState, ScheduleRunHandle)>();
        lock (_gate)
        {
            if (_started)
            {
                return Task.CompletedTask;
            }

            _started = true;
            _startedAt = _time.GetTimestamp();
            _runs = _succeeded = _failed = _skipped = _durationTicks = 0;
            var now = _time.GetUtcNow();
            foreach (var state in _states.Values.Where(s => s.Definition.Options.Enabled))
            {
                Arm(state, state.Definition.NextTick(now), now);
                if (state.Definition.Options.MaxCatchUpRuns > 0 && state.Current is null && state.Definition.PreviousTick(now) is { } missed)
                {
                    state.Current = new ScheduleRunHandle(ScheduleRunKind.CatchUp, missed);
                    launches.Add((state, state.Current));
                }
            }

            Log.SchedulerStarted(_logger, _states.Values.Count(s => s.Definition.Options.Enabled));
        }

        foreach (var (state, run) in launches)
        {
            Launch(state, run, CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    public async Task<RefreshSchedulerMetrics> StopAsync(CancellationToken cancellationToken = default)
    {
        var waits = new List<Task>();
        lock (_gate)
        {
            if (!_started)
            {
                return _lastMetrics ?? Metrics(TimeSpan.Zero);
            }

            _started = false;
            foreach (var state in _states.Values)
            {
                Disarm(state);
                if (state.Current is { } run)
                {
                    waits.Add(WaitOrCancelAsync(state, run, cancellationToken));
                }
            }
        }

        await Task.WhenAll(waits).ConfigureAwait(false);
        lock (_gate)
        {
            var metrics = Metrics(_time.GetElapsedTime(_startedAt));
            _lastMetrics = metrics;
            Log.SchedulerStopped(_logger, metrics.Uptime, metrics.TotalRuns, metrics.Failed, metrics.SkippedTicks);
            return metrics;
        }
    }

    public async Task<IReadOnlyList<RefreshScheduleRun>> ForceAsync(string? schedule = null, CancellationToken cancellationToken = default)
    {
        var results = new List<Task<RefreshScheduleRun?>>();
        var launches = new List<(ScheduleState, ScheduleRunHandle)>();
        lock (_gate)
        {
            IEnumerable<ScheduleState> chosen;
            if (schedule is null)
            {
                chosen = _states.Values.Where(s => s.Definition.Options.Enabled);
            }
            else if (_states.TryGetValue(schedule, out var one))
            {
                chosen = [one];
            }
            else
            {
                throw new ArgumentException($"No schedule is named '{schedule}' (configured: {string.Join(", ", _states.Keys)}).", nameof(schedule));
            }

            foreach (var state in chosen)
            {
                if (state.Current is not null)
                {
                    results.Add(Task.FromResult<RefreshScheduleRun?>(new RefreshScheduleRun
                    {
                        Schedule = state.Definition.Name,
                        StartedAt = _time.GetUtcNow(),
                        Outcome = RefreshScheduleOutcome.Skipped,
                        Error = "the schedule is already running",
                    }));
                    continue;
                }

                state.Current = new ScheduleRunHandle(ScheduleRunKind.Forced, null);
                launches.Add((state, state.Current));
                results.Add(state.Current.Done.Task);
            }
        }

        foreach (var (state, run) in launches)
        {
            Launch(state, run, cancellationToken);
        }

        var done = await Task.WhenAll(results).ConfigureAwait(false);
        return [.. done.OfType<RefreshScheduleRun>()];
    }

    public IReadOnlyList<RefreshScheduleStatus> GetStatus()
    {
        lock (_gate)
        {
            return [.. _states.Values.Select(s =>
            {
                var d = s.Definition;
                var next = _started && d.Options.Enabled ? s.NextTick : null;
                return new RefreshScheduleStatus
                {
                    Name = d.Name,
                    Enabled = d.Options.Enabled,
                    Running = s.Current is not null,
                    LastRun = s.LastRun,
                    NextRunUtc = next,
                    NextRunLocal = next is { } n ? d.InZone(n) : null,
                    TimeZone = d.Options.TimeZone,
                    Interval = d.Interval,
                    Cron = d.CronExpression is null ? null : d.Options.Cron,
                    SucceededCount = s.Succeeded,
                    FailedCount = s.Failed,
                    SkippedTicks = s.Skipped,
                    ClaimedElsewhereCount = s.ClaimedElsewhere,
                    DataAsOf = s.DataAsOf,
                    DataBehind = s.DataAsOf is { } asOf ? _time.GetUtcNow() - asOf : null,
                };
            })];
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _started = false;
            foreach (var state in _states.Values)
            {
                Disarm(state);
                state.Current?.Cancellation.Cancel();
            }
        }
    }

    private void OnTimer(object? o)
    {
        try
        {
            OnTimerCore(o);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A timer callback that throws takes the process down: log it instead (the schedule re-arms on its next start).
            var (state, _) = ((ScheduleState, int))o!;
            Log.ScheduleRunFailed(_logger, state.Definition.Name, state.NextTick, RefreshScheduleOutcome.Failed, "the scheduler's timer failed: " + e.Message);
        }
    }

    private void OnTimerCore(object? o)
    {
        var (state, generation) = ((ScheduleState, int))o!;
        ScheduleRunHandle? launch = null;
        lock (_gate)
        {
            if (!_started || generation != state.Generation || state.NextTick is not { } tick)
            {
                return;
            }

            var now = _time.GetUtcNow();
            if (now < state.FireAt)
            {
                // A real timer may fire a little early: wait for the rest, same tick.
                ArmAt(state, tick, state.FireAt, now);
                return;
            }

            var d = state.Definition;
            Arm(state, d.NextTick(now > tick ? now : tick), now);
            if (d.Options.MaxCatchUpRuns == 0 && d.NextTick(tick) is { } following && following <= now)
            {
                return; // a later tick has passed already (the process was suspended): no catch-up wanted
            }

            if (state.Current is not null)
            {
                state.Skipped++;
                _skipped++;
                Log.ScheduleTickSkipped(_logger, d.Name, tick);
                return;
            }

            launch = state.Current = new ScheduleRunHandle(ScheduleRunKind.Tick, tick);
        }

        Launch(state, launch, CancellationToken.None);
    }

    /// <summary>Arms the timer for <paramref name="tick"/> plus jitter; none when there is no next tick.</summary>
    private void Arm(ScheduleState state, DateTimeOffset? tick, DateTimeOffset now)
    {
        if (tick is not { } t)
        {
            Disarm(state);
            state.NextTick = null;
            return;
        }

        var jitter = state.Definition.Options.Jitter;
        var fireAt = jitter > TimeSpan.Zero ? t + TimeSpan.FromTicks((long)(jitter.Ticks * Math.Clamp(_random(), 0, 1))) : t;
        ArmAt(state, t, fireAt, now);
    }

    private void ArmAt(ScheduleState state, DateTimeOffset tick, DateTimeOffset fireAt, DateTimeOffset now)
    {
        Disarm(state);
        state.NextTick = tick;
        state.FireAt = fireAt;
        var delay = fireAt - now;
        if (delay < MinDelay)
        {
            delay = MinDelay; // never fire inside CreateTimer (a test clock would reenter this lock)
        }
        else if (delay > MaxDelay)
        {
            delay = MaxDelay; // timers take at most ~49.7 days; an early firing re-arms for the same tick
        }

        var suppressed = ExecutionFlow.Suppress();
        try
        {
            state.Timer = _time.CreateTimer(_onTimer, (state, state.Generation), delay, Timeout.InfiniteTimeSpan);
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }
    }

    private static void Disarm(ScheduleState state)
    {
        state.Generation++;
        state.Timer?.Dispose();
        state.Timer = null;
    }

    private void Launch(ScheduleState state, ScheduleRunHandle run, CancellationToken cancellationToken)
    {
        var suppressed = ExecutionFlow.Suppress();
        try
        {
            _ = _tasks.Run(token => ExecuteAsync(state, run, token, cancellationToken));
        }
        catch (Exception e)
        {
            Finish(state, run, new RefreshScheduleRun { Schedule = state.Definition.Name, Tick = run.Tick, StartedAt = _time.GetUtcNow(), Outcome = RefreshScheduleOutcome.Failed, Error = e.Message });
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }
    }

    private async Task ExecuteAsync(ScheduleState state, ScheduleRunHandle run, CancellationToken hostStopped, CancellationToken caller)
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            ExecutionContext.RestoreFlow();
        }

        var d = state.Definition;
        var startedAt = _time.GetUtcNow();
        var started = _time.GetTimestamp();
        RefreshScheduleRun? result;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(run.Cancellation.Token, hostStopped, caller);
        string? lease = null;
        RunHold? hold = null;
        try
        {
            var claimed = run.Kind switch
            {
                ScheduleRunKind.Tick => await _ticks.TryClaimAsync(d.Name, run.Tick!.Value, linked.Token).ConfigureAwait(false),
                ScheduleRunKind.CatchUp => await _ticks.TryClaimCatchUpAsync(d.Name, run.Tick!.Value, linked.Token).ConfigureAwait(false),
                _ => true,
            };

            if (!claimed)
            {
                result = run.Kind == ScheduleRunKind.CatchUp ? null : new RefreshScheduleRun
                {
                    Schedule = d.Name,
                    Tick = run.Tick,
                    StartedAt = startedAt,
                    Duration = _time.GetElapsedTime(started),
                    Outcome = RefreshScheduleOutcome.ClaimedElsewhere,
                };
            }
            else if (await TryStartRunAsync(d, linked.Token).ConfigureAwait(false) is not { } held)
            {
                result = new RefreshScheduleRun
                {
                    Schedule = d.Name,
                    Tick = run.Tick,
                    StartedAt = startedAt,
                    Duration = _time.GetElapsedTime(started),
                    Outcome = RefreshScheduleOutcome.Skipped,
                    Error = "the schedule is running on another instance",
                };
            }
            else
            {
                lease = held;
                hold = KeepHeld(d, held);
                if (run.Kind == ScheduleRunKind.CatchUp)
                {
                    Log.ScheduleCatchUp(_logger, d.Name, run.Tick!.Value);
                }

                var batch = d.Selection is null ? null
                    : await _refresher.RefreshManyAsync(d.Selection, new RefreshOptions { Mode = d.Mode, Trigger = d.Name }, linked.Token).ConfigureAwait(false);
                var windows = new List<RefreshResult>();
                var windowErrors = new List<string>();
                foreach (var window in d.Windows)
                {
                    var windowOptions = new RefreshOptions
                    {
                        Strategy = d.Strategy,
                        Days = d.Options.Days,
                        TimeZone = d.Options.TimeZone,
                        FullRefreshAfter = d.Options.FullRefreshAfter,
                        Trigger = d.Name,
                    };
                    try
                    {
                        var windowResult = await _refresher.RefreshAsync(window, windowOptions, linked.Token).ConfigureAwait(false);
                        windows.Add(windowResult);
                        if (windowResult.Outcome == RefreshOutcome.Failed)
                        {
                            windowErrors.Add($"{window}: {windowResult.Error?.Message ?? "failed"}");
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !linked.IsCancellationRequested)
                    {
                        windowErrors.Add($"{window}: {e.Message}");
                    }
                }

                var failedParts = (batch is null || batch.Status == RefreshBatchStatus.Success ? 0 : 1) + windowErrors.Count;
                var fullyFailed = (batch is null || batch.Status == RefreshBatchStatus.Failed) && windowErrors.Count == d.Windows.Count;
                var errors = new List<string>();
                if (batch is not null && batch.Status != RefreshBatchStatus.Success)
                {
                    errors.Add(batch.Error?.Message ?? $"failed: {string.Join(", ", batch.FailedViews)}; skipped: {string.Join(", ", batch.SkippedViews)}");
                }

                errors.AddRange(windowErrors);
                result = new RefreshScheduleRun
                {
                    Schedule = d.Name,
                    Tick = run.Tick,
                    StartedAt = startedAt,
                    Duration = _time.GetElapsedTime(started),
                    Batch = batch,
                    Windows = windows,
                    Outcome = failedParts == 0 ? RefreshScheduleOutcome.Succeeded
                        : fullyFailed ? RefreshScheduleOutcome.Failed
                        : RefreshScheduleOutcome.PartiallySucceeded,
                    Error = errors.Count == 0 ? null : string.Join("; ", errors),
                };
                if (result.Outcome != RefreshScheduleOutcome.Failed && d.DataTimestamp is { } data)
                {
                    await ReadDataFreshnessAsync(state, data.View, data.Column, linked.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            result = Failure(RefreshScheduleOutcome.Cancelled, "cancelled");
        }
        catch (Exception e)
        {
            result = Failure(RefreshScheduleOutcome.Failed, e.Message);
        }

        hold?.Dispose();

        if (lease is not null)
        {
            await EndRunAsync(d.Name, lease).ConfigureAwait(false);
        }

        Finish(state, run, result);

        RefreshScheduleRun Failure(RefreshScheduleOutcome outcome, string error) => new()
        {
            Schedule = d.Name,
            Tick = run.Tick,
            StartedAt = startedAt,
            Duration = _time.GetElapsedTime(started),
            Outcome = outcome,
            Error = error,
        };
    }

    /// <summary>
    /// Renews the run's hold every third of its lease while it runs, so that a run longer than <c>RunLease</c> still keeps
    /// other instances off the schedule; a hold that cannot be renewed (the database gone) lapses at the end of its lease.
    /// A timer rather than an awaited loop: the run's own flow (and a test clock stepping through it) is not touched.
    /// </summary>
    private RunHold KeepHeld(ScheduleDefinition d, string id)
    {
        var hold = new RunHold();
        var every = d.Options.RunLease / 3;
        var suppressed = ExecutionFlow.Suppress();
        try
        {
            hold.Timer = _time.CreateTimer(_ => _ = RenewAsync(d, id, hold), null, every, every);
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }

        return hold;
    }

    private async Task RenewAsync(ScheduleDefinition d, string id, RunHold hold)
    {
        try
        {
            if (!await _ticks.RenewRunAsync(d.Name, id, d.Options.RunLease, CancellationToken.None).ConfigureAwait(false) && !hold.Ended)
            {
                Log.ScheduleRunFailed(_logger, d.Name, null, RefreshScheduleOutcome.Failed, "the run's hold on the schedule lapsed before it ended (another instance may run it too)");
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (!hold.Ended)
            {
                Log.ScheduleRunFailed(_logger, d.Name, null, RefreshScheduleOutcome.Failed, $"could not renew the run's hold: {e.Message}");
            }
        }
    }

    /// <summary>The renewal of one run's hold.</summary>
    private sealed class RunHold : IDisposable
    {
        private volatile bool _ended;

        public ITimer? Timer { get; set; }

        public bool Ended => _ended;

        public void Dispose()
        {
            _ended = true;
            Timer?.Dispose();
        }
    }

    /// <summary>Takes the schedule across instances for this run; the run's id, or null when another instance runs it.</summary>
    private async Task<string?> TryStartRunAsync(ScheduleDefinition d, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        return await _ticks.TryStartRunAsync(d.Name, id, d.Options.RunLease, cancellationToken).ConfigureAwait(false) ? id : null;
    }

    // Best effort: a hold that cannot be released lapses at the end of its lease.
    private async Task EndRunAsync(string schedule, string id)
    {
        try
        {
            await _ticks.EndRunAsync(schedule, id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.ScheduleRunFailed(_logger, schedule, null, RefreshScheduleOutcome.Failed, $"could not release the run: {e.Message}");
        }
    }

    // Best effort: a freshness that cannot be read leaves the last one in place and does not fail the run.
    private async Task ReadDataFreshnessAsync(ScheduleState state, QualifiedName view, string column, CancellationToken cancellationToken)
    {
        try
        {
            var newest = await _ticks.NewestDataAsync(view, column, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                state.DataAsOf = newest;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.ScheduleDataFreshnessFailed(_logger, state.Definition.Name, $"{view}.{column}", e.Message);
        }
    }

    private void Finish(ScheduleState state, ScheduleRunHandle run, RefreshScheduleRun? result)
    {
        lock (_gate)
        {
            if (ReferenceEquals(state.Current, run))
            {
                state.Current = null;
            }

            if (result is not null)
            {
                Count(state, result);
            }
        }

        if (result is not null)
        {
            switch (result.Outcome)
            {
                case RefreshScheduleOutcome.ClaimedElsewhere:
                    Log.ScheduleTickClaimedElsewhere(_logger, result.Schedule, result.Tick);
                    break;
                case RefreshScheduleOutcome.Cancelled or RefreshScheduleOutcome.Failed when result.Batch is null && result.Windows.Count == 0:
                    Log.ScheduleRunFailed(_logger, result.Schedule, result.Tick, result.Outcome, result.Error ?? "");
                    break;
                default:
                    Log.ScheduleRunCompleted(_logger, result.Schedule, result.Tick, result.Outcome, result.Duration.TotalMilliseconds);
                    break;
            }
        }

        run.Done.TrySetResult(result);
    }

    private void Count(ScheduleState state, RefreshScheduleRun result)
    {
        if (result.Outcome == RefreshScheduleOutcome.ClaimedElsewhere)
        {
            state.ClaimedElsewhere++;
            return;
        }

        if (result.Outcome == RefreshScheduleOutcome.Skipped)
        {
            state.Skipped++;
            _skipped++;
            return;
        }

        state.LastRun = result;
        _runs++;
        _durationTicks += result.Duration.Ticks;
        if (result.Outcome == RefreshScheduleOutcome.Succeeded)
        {
            state.Succeeded++;
            _succeeded++;
        }
        else
        {
            state.Failed++;
            _failed++;
        }
    }

    private async Task WaitOrCancelAsync(ScheduleState state, ScheduleRunHandle run, CancellationToken cancellationToken)
    {
        var timeout = state.Definition.Options.StopTimeout;
        try
        {
            await run.Done.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (TimeoutException)
        {
            Log.ScheduleStopTimedOut(_logger, state.Definition.Name, timeout);
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            run.Cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // finished meanwhile
        }

        await run.Done.Task.ConfigureAwait(false);
    }

    private RefreshSchedulerMetrics Metrics(TimeSpan uptime) => new()
    {
        TotalRuns = _runs,
        Succeeded = _succeeded,
        Failed = _failed,
        SkippedTicks = _skipped,
        AverageDuration = _runs == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(_durationTicks / _runs),
        Uptime = uptime,
    };
}
