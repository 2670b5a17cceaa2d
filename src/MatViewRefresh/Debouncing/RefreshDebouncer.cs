using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>The per-key debounce state machine (see <see cref="IRefreshDebouncer"/> and DESIGN.md's timeline).</summary>
/// <remarks>
/// Each key's state is guarded by a lock on its entry. Due times are on the monotonic clock
/// (<see cref="TimeProvider.GetTimestamp"/>), so stepping the wall clock moves no run. Timers and launched runs do not
/// capture the caller's execution context. At most <see cref="RefreshDebounceOptions.MaxConcurrentRuns"/> runs call
/// the refresher at once; the others wait for a slot.
/// </remarks>
internal sealed class RefreshDebouncer : IRefreshDebouncer, IDisposable
{
    private readonly ConcurrentDictionary<string, DebounceEntry> _entries = new(StringComparer.Ordinal);
    private readonly IMaterializedViewRefresher _refresher;
    private readonly IRefreshTaskFactory _tasks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RefreshDebounceOptions _options;
    private readonly Func<double> _random;
    private readonly RefreshOptions _runOptions;
    private readonly TimerCallback _onTimer;
    private readonly bool _enabled;
    private readonly long _origin;
    private readonly long _minIntervalTicks;
    private readonly long _maxWaitTicks;
    private readonly long _delayMinTicks;
    private readonly long _delaySpreadTicks;

    // Never disposed: runs still in flight after Dispose release their slot (a SemaphoreSlim without its wait handle holds nothing).
    private readonly SemaphoreSlim _runSlots;
    private volatile bool _stopping;
    private volatile bool _disposed;

    public RefreshDebouncer(
        IMaterializedViewRefresher refresher,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<RefreshDebouncer> logger)
        : this(refresher, tasks, time, options, logger, Environment.GetEnvironmentVariable)
    {
    }

    internal RefreshDebouncer(
        IMaterializedViewRefresher refresher,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<RefreshDebouncer> logger,
        Func<string, string?> environment)
    {
        _refresher = refresher;
        _tasks = tasks;
        _time = time;
        _origin = time.GetTimestamp();
        _logger = logger;
        _options = options.Value.Debounce;
        _random = options.Value.Randomizer;
        _runOptions = new RefreshOptions { SkipIfBusy = true, Trigger = _options.Trigger };
        _onTimer = OnTimer;
        _minIntervalTicks = _options.MinInterval.Ticks;
        _maxWaitTicks = _options.MaxWait.Ticks;
        _delayMinTicks = _options.DelayMin.Ticks;
        _delaySpreadTicks = _options.DelayMax.Ticks - _delayMinTicks;
        _runSlots = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrentRuns));
        var killSwitch = KillSwitch.IsTruthy(environment(RefreshDebounceOptions.DisableVariable));
        _enabled = _options.Enabled && !killSwitch;
        if (killSwitch)
        {
            Log.DebounceDisabled(_logger, RefreshDebounceOptions.DisableVariable);
        }
    }

    /// <summary>Keys currently remembered (pending, running, or run within the last MinInterval).</summary>
    internal int KeyCount => _entries.Count;

    public RefreshTicket Request(RefreshTarget target, string? key = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        key ??= target.ToString();
        if (!_enabled || _stopping)
        {
            return SkippedTicket(target, key, _enabled ? "the host is stopping" : "debounced refreshes are disabled");
        }

        var settleTicks = SettleTicks();
        while (true)
        {
            var entry = _entries.TryGetValue(key, out var found) ? found : _entries.GetOrAdd(key, static k => new DebounceEntry(k));
            PendingRun run;
            long now;
            long due;
            bool joined;
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                if (_stopping)
                {
                    // Stopping (or disposed) since the check above: schedule nothing, arm no timer.
                    if (entry.Pending is null && entry.Running is null)
                    {
                        Forget(entry);
                    }

                    break;
                }

                now = Now();
                var settled = now + settleTicks;
                if (entry.Pending is { } pending)
                {
                    joined = true;
                    run = pending;
                    if (!entry.RetryWait)
                    {
                        var pushed = Clamp(entry, settled);
                        if (pushed > entry.DueTicks)
                        {
                            entry.DueTicks = pushed;
                        }
                    }
                }
                else
                {
                    joined = false;
                    run = new PendingRun();
                    entry.Target = target;
                    entry.FirstRequestTicks = now;
                    entry.RetryWait = false;
                    entry.DueTicks = Clamp(entry, settled);
                    entry.Pending = run;
                    if (entry.Running is null)
                    {
                        Arm(entry, now); // a test clock may fire it right here: everything the ticket needs is read already
                    }
                }

                due = entry.DueTicks;
            }

            var scheduledFor = WallTime(due, now);
            if (!joined)
            {
                Log.DebounceScheduled(_logger, key, scheduledFor);
            }

            return new RefreshTicket(key, scheduledFor, joined, skipped: false, run.Completion.Task);
        }

        return SkippedTicket(target, key, _disposed ? "the host stopped" : "the host is stopping");
    }

    public DateOnly LocalDay(DateTimeOffset instant, string? timeZone = null) => LocalDays.Of(instant, timeZone ?? _options.DefaultTimeZone);

    /// <summary>Runs every pending refresh now (still at most MaxConcurrentRuns at once) and waits for all of them, up to the shutdown timeout; reports the rest.</summary>
    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        var waits = new List<Task>();
        foreach (var entry in _entries.Values)
        {
            (PendingRun Run, RefreshTarget Target)? start = null;
            lock (entry)
            {
                if (entry.Running is { } running)
                {
                    waits.Add(running.Completion.Task);
                }

                if (entry.Pending is { } pending)
                {
                    waits.Add(pending.Completion.Task);
                    start = TakePending(entry, Now());
                }
            }

            if (start is { } s)
            {
                Launch(entry, s.Run, s.Target);
            }
        }

        if (waits.Count == 0)
        {
            return;
        }

        try
        {
            await Task.WhenAll(waits).WaitAsync(_options.ShutdownTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            var unfinished = _entries.Values.Where(en => en.Pending is not null || en.Running is not null).Select(en => en.Key).ToList();
            Log.DebounceFlushIncomplete(_logger, unfinished.Count, string.Join(", ", unfinished.Take(20)));
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _disposed = true;
        foreach (var entry in _entries.Values)
        {
            PendingRun? abandoned;
            lock (entry)
            {
                entry.Timer?.Dispose();
                entry.Timer = null;
                abandoned = entry.Pending;
                entry.Pending = null;
                if (entry.Running is null)
                {
                    Forget(entry);
                }
            }

            // Whoever awaits a ticket that will never run learns so instead of waiting forever.
            abandoned?.Complete(SkippedResult(entry.Target!, "the host stopped before the refresh ran"));
        }
    }

    /// <summary>Ticks of the monotonic clock since this debouncer was created; wall-clock steps do not move it.</summary>
    private long Now() => _time.GetElapsedTime(_origin).Ticks;

    /// <summary>The wall-clock time of <paramref name="dueTicks"/>: now on the wall clock plus what remains of the delay.</summary>
    private DateTimeOffset WallTime(long dueTicks, long now) => _time.GetUtcNow() + TimeSpan.FromTicks(Math.Max(0, dueTicks - now));

    private void OnTimer(object? state)
    {
        var entry = (DebounceEntry)state!;
        (PendingRun Run, RefreshTarget Target)? start;
        lock (entry)
        {
            if (entry.Removed || entry.Running is not null || _disposed)
            {
                return; // a finishing run re-arms the timer
            }

            var now = Now();
            if (entry.Pending is null)
            {
                ForgetIfIdle(entry, now);
                return;
            }

            if (now < entry.DueTicks && !_stopping)
            {
                Arm(entry, now);
                return;
            }

            start = TakePending(entry, now);
        }

        if (start is { } s)
        {
            Launch(entry, s.Run, s.Target);
        }
    }

    private static (PendingRun Run, RefreshTarget Target)? TakePending(DebounceEntry entry, long now)
    {
        if (entry.Running is not null || entry.Pending is null)
        {
            return null;
        }

        var run = entry.Pending;
        entry.Pending = null;
        entry.Running = run;
        entry.RetryWait = false;
        entry.LastRunStartTicks = now;
        return (run, entry.Target!);
    }

    /// <summary>Hands the run to the task factory without the current execution context (the caller's AsyncLocals and Activity).</summary>
    private void Launch(DebounceEntry entry, PendingRun run, RefreshTarget target)
    {
        var suppressed = ExecutionFlow.Suppress();
        try
        {
            _ = _tasks.Run(token => ExecuteAsync(entry, run, target, token));
        }
        catch (Exception e)
        {
            // The factory refused the work: it will never run, so finish it here rather than leave the key running.
            Completed(entry, run, target, FailedResult(target, _time.GetUtcNow(), new RefreshError(null, e.Message, e)), permanent: true);
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }
    }

    private async Task ExecuteAsync(DebounceEntry entry, PendingRun run, RefreshTarget target, CancellationToken cancellationToken)
    {
        // Launched with the flow suppressed; an inline factory runs us on that thread: let our own awaits flow again.
        if (ExecutionContext.IsFlowSuppressed())
        {
            ExecutionContext.RestoreFlow();
        }

        RefreshResult result;
        var permanent = false;
        var startedAt = _time.GetUtcNow();
        var slot = false;
        try
        {
            // Still this key's run while it waits: requests meanwhile cause one more run after it.
            await _runSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
            slot = true;
            startedAt = _time.GetUtcNow();
            result = await _refresher.RefreshAsync(target, _runOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MaterializedViewNotFoundException or RefreshFunctionNotFoundException or ArgumentException)
        {
            result = FailedResult(target, startedAt, new RefreshError(null, e.Message, e));
            permanent = true; // retrying cannot make a missing view appear
        }
        catch (OperationCanceledException e)
        {
            result = FailedResult(target, startedAt, new RefreshError(null, "Cancelled: the host stopped before the refresh finished.", e));
            permanent = true;
        }
        catch (Exception e)
        {
            result = FailedResult(target, startedAt, new RefreshError(null, e.Message, e));
        }
        finally
        {
            if (slot)
            {
                _runSlots.Release();
            }
        }

        Completed(entry, run, target, result, permanent);
    }

    /// <summary>
    /// After a run: retry, run again, or finish; then arm the key's timer or forget it. Whatever happens, the key stops
    /// running and the run's tickets complete: if this bookkeeping throws, the key starts afresh and the error is logged.
    /// </summary>
    private void Completed(DebounceEntry entry, PendingRun run, RefreshTarget target, RefreshResult result, bool permanent)
    {
        PendingRun? finished = run;
        PendingRun? abandoned = null;
        (PendingRun Run, RefreshTarget Target)? next = null;
        Exception? error = null;
        try
        {
            lock (entry)
            {
                try
                {
                    finished = AfterRun(entry, run, target, result, permanent, out next);
                }
                catch (Exception e)
                {
                    error = e;
                    finished = run;
                    next = null;
                    abandoned = entry.Pending;
                    entry.Pending = null;
                    entry.Running = null;
                    Forget(entry);
                }
            }
        }
        catch (Exception e) when (error is null)
        {
            error = e; // Forget itself failed (disposing the timer): the tickets still complete below
        }
        finally
        {
            if (error is not null)
            {
                LogBookkeepingFailed(entry.Key, error);
            }

            finished?.Complete(result);
            abandoned?.Complete(FailedResult(target, _time.GetUtcNow(), new RefreshError(null, "The debouncer's bookkeeping failed: " + error?.Message, error)));
        }

        if (next is { } n)
        {
            Launch(entry, n.Run, n.Target);
        }
    }

    /// <summary>The state change after a run, under the entry's lock; returns the run to complete, or null when it was requeued.</summary>
    private PendingRun? AfterRun(DebounceEntry entry, PendingRun run, RefreshTarget target, RefreshResult result, bool permanent, out (PendingRun Run, RefreshTarget Target)? next)
    {
        PendingRun? finished = null;
        next = null;
        var now = Now();
        entry.Running = null;
        if (result.Outcome == RefreshOutcome.Coalesced && !_stopping)
        {
            // Another instance holds the target: its snapshot may predate our requests, so run again after it.
            Log.DebounceCoalesced(_logger, entry.Key, target.Scope);
            Requeue(entry, run, now, now + SettleTicks(), retryWait: false);
        }
        else if (result.Outcome == RefreshOutcome.Failed && !permanent && !_stopping && run.Failures < _options.MaxFailureRetries)
        {
            run.Failures++;
            var delay = FailureDelay(run.Failures);
            Log.DebounceRunFailed(_logger, entry.Key, target.Scope, run.Failures, result.Error?.ToString() ?? "unknown error", delay.TotalMilliseconds);
            Requeue(entry, run, now, now + delay.Ticks, retryWait: true);
        }
        else
        {
            finished = run;
            if (result.Outcome == RefreshOutcome.Failed)
            {
                Log.DebounceRunGaveUp(_logger, entry.Key, target.Scope, run.Failures, result.Error?.ToString() ?? "unknown error");
            }
        }

        if (entry.Pending is not null)
        {
            if (_stopping)
            {
                next = TakePending(entry, now);
            }
            else
            {
                Arm(entry, now);
            }
        }
        else
        {
            ForgetIfIdle(entry, now);
        }

        return finished;
    }

    private void LogBookkeepingFailed(string key, Exception error)
    {
        try
        {
            Log.DebounceBookkeepingFailed(_logger, key, error.Message, error);
        }
        catch (Exception)
        {
            // The logger is what failed: nothing better to do than carry on completing the tickets.
        }
    }

    private void Requeue(DebounceEntry entry, PendingRun run, long now, long due, bool retryWait)
    {
        if (entry.LastRunStartTicks != DebounceEntry.None && due < entry.LastRunStartTicks + _minIntervalTicks)
        {
            due = entry.LastRunStartTicks + _minIntervalTicks;
        }

        if (entry.Pending is null)
        {
            entry.FirstRequestTicks = now;
            entry.DueTicks = due;
            entry.Pending = run;
        }
        else
        {
            // Requests arrived during the run: one pending run now covers them and the requeued ones.
            entry.Pending.Merge(run);
            if (due > entry.DueTicks)
            {
                entry.DueTicks = due;
            }
        }

        entry.RetryWait |= retryWait;
    }

    private void ForgetIfIdle(DebounceEntry entry, long now)
    {
        // Kept until MinInterval after its last run, so the next request still honours MinInterval; then forgotten.
        var forgetAt = (entry.LastRunStartTicks == DebounceEntry.None ? now : entry.LastRunStartTicks) + _minIntervalTicks;
        if (_disposed || now >= forgetAt)
        {
            Forget(entry);
        }
        else
        {
            entry.DueTicks = forgetAt;
            Arm(entry, now);
        }
    }

    private void Forget(DebounceEntry entry)
    {
        entry.Removed = true;
        entry.Timer?.Dispose();
        entry.Timer = null;
        _entries.TryRemove(new KeyValuePair<string, DebounceEntry>(entry.Key, entry));
    }

    /// <summary>(Re)arms the key's timer for its due time; never after Dispose. The caller holds the entry's lock.</summary>
    private void Arm(DebounceEntry entry, long now)
    {
        if (_disposed)
        {
            return;
        }

        var delay = TimeSpan.FromTicks(Math.Max(0, entry.DueTicks - now));
        if (entry.Timer is not null)
        {
            entry.Timer.Change(delay, Timeout.InfiniteTimeSpan);
            return;
        }

        ITimer timer;
        var suppressed = ExecutionFlow.Suppress();
        try
        {
            timer = _time.CreateTimer(_onTimer, entry, delay, Timeout.InfiniteTimeSpan);
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }

        // A test clock may have fired it inside CreateTimer (reentering this lock), which may have forgotten the key or armed another timer.
        if (entry.Removed || entry.Timer is not null)
        {
            timer.Dispose();
        }
        else
        {
            entry.Timer = timer;
        }
    }

    /// <summary>Not before MinInterval after the last run started; not after MaxWait after the first pending request.</summary>
    private long Clamp(DebounceEntry entry, long due)
    {
        var last = entry.LastRunStartTicks;
        if (last != DebounceEntry.None && due < last + _minIntervalTicks)
        {
            due = last + _minIntervalTicks;
        }

        var latest = entry.FirstRequestTicks + _maxWaitTicks;
        return due > latest ? latest : due;
    }

    private long SettleTicks() => _delayMinTicks + (long)(_delaySpreadTicks * _random());

    private TimeSpan FailureDelay(int failures)
    {
        var ticks = _options.FailureRetryDelay.Ticks * Math.Pow(2, failures - 1);
        return ticks >= _options.FailureRetryMaxDelay.Ticks ? _options.FailureRetryMaxDelay : TimeSpan.FromTicks((long)ticks);
    }

    private RefreshTicket SkippedTicket(RefreshTarget target, string key, string reason)
    {
        Log.DebounceSkipped(_logger, key, reason);
        var result = SkippedResult(target, reason);
        return new RefreshTicket(key, result.StartedAt, joined: false, skipped: true, Task.FromResult(result));
    }

    private RefreshResult SkippedResult(RefreshTarget target, string reason)
    {
        var now = _time.GetUtcNow();
        return new RefreshResult
        {
            Target = target,
            Outcome = RefreshOutcome.Skipped,
            RequestedMode = RefreshMode.Auto,
            StartedAt = now,
            FinishedAt = now,
            Error = new RefreshError(null, "Skipped: " + reason),
        };
    }

    private static RefreshResult FailedResult(RefreshTarget target, DateTimeOffset startedAt, RefreshError error) => new()
    {
        Target = target,
        Outcome = RefreshOutcome.Failed,
        RequestedMode = RefreshMode.Auto,
        StartedAt = startedAt,
        FinishedAt = startedAt,
        Error = error,
    };
}
