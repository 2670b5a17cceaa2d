using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>The per-key debounce state machine (see <see cref="IRefreshDebouncer"/> and DESIGN.md's timeline).</summary>
internal sealed class RefreshDebouncer : IRefreshDebouncer, IDisposable
{
    private readonly IMaterializedViewRefresher _refresher;
    private readonly IRefreshTaskFactory _tasks;
    private readonly TimeProvider _time;
    private readonly DebounceClock _clock;
    private readonly ILogger _logger;
    private readonly IPendingRefreshStore _store;
    private readonly RefreshDebounceOptions _options;
    private readonly Func<double> _random;
    private readonly RefreshOptions _runOptions;
    private readonly TimerCallback _onTimer;
    private readonly bool _enabled;
    private readonly long _minIntervalTicks;
    private readonly long _maxWaitTicks;
    private readonly long _delayMinTicks;
    private readonly long _delaySpreadTicks;
    private volatile bool _stopping;

    public RefreshDebouncer(
        IMaterializedViewRefresher refresher,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<RefreshDebouncer> logger,
        IPendingRefreshStore store)
        : this(refresher, tasks, time, options, logger, store, Environment.GetEnvironmentVariable)
    {
    }

    internal RefreshDebouncer(
        IMaterializedViewRefresher refresher,
        IRefreshTaskFactory tasks,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<RefreshDebouncer> logger,
        IPendingRefreshStore store,
        Func<string, string?> environment)
    {
        _refresher = refresher;
        _tasks = tasks;
        _time = time;
        _clock = new DebounceClock(time);
        _logger = logger;
        _store = store;
        _options = options.Value.Debounce;
        _random = options.Value.Randomizer;
        _runOptions = new RefreshOptions { SkipIfBusy = true, Trigger = _options.Trigger };
        _onTimer = OnTimer;
        _minIntervalTicks = _options.MinInterval.Ticks;
        _maxWaitTicks = _options.MaxWait.Ticks;
        _delayMinTicks = _options.DelayMin.Ticks;
        _delaySpreadTicks = _options.DelayMax.Ticks - _delayMinTicks;
        var killSwitch = KillSwitch.IsTruthy(environment(RefreshDebounceOptions.DisableVariable));
        _enabled = _options.Enabled && !killSwitch;
        if (killSwitch)
        {
            Log.DebounceDisabled(_logger, RefreshDebounceOptions.DisableVariable);
        }
    }

    /// <summary>Keys currently remembered (pending, running, or run within the last MinInterval).</summary>
    internal int KeyCount => _store.Count;

    public RefreshTicket Request(RefreshTarget target, string? key = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        key ??= target.ToString();
        if (!_enabled || _stopping)
        {
            return SkippedTicket(target, key, _enabled ? "the host is stopping" : "debounced refreshes are disabled");
        }

        var now = _clock.UtcTicks();
        var settled = now + SettleTicks();
        while (true)
        {
            var entry = _store.GetOrAdd(key);

            // Hot path: join the pending run without locking. If the timer takes it meanwhile, the run still starts
            // after this request began (so after the caller's commit) and covers it; if it was taken before,
            // Pending has changed and the locked path below creates a new pending run.
            var pending = entry.Pending;
            if (pending is not null)
            {
                if (!entry.RetryWait)
                {
                    PushBack(entry, settled);
                }

                if (entry.Pending == pending)
                {
                    return new RefreshTicket(key, Utc(Volatile.Read(ref entry.DueTicks)), joined: true, skipped: false, pending.Completion.Task);
                }
            }

            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                bool joined;
                if (entry.Pending is null)
                {
                    joined = false;
                    entry.Target = target;
                    entry.FirstRequestTicks = now;
                    entry.RetryWait = false;
                    Volatile.Write(ref entry.DueTicks, Clamp(entry, settled));
                    entry.Pending = new PendingRun();
                    if (entry.Running is null)
                    {
                        Arm(entry, now);
                    }

                    Log.DebounceScheduled(_logger, key, Utc(entry.DueTicks));
                }
                else
                {
                    joined = true;
                    if (!entry.RetryWait)
                    {
                        PushBack(entry, settled);
                    }
                }

                return new RefreshTicket(key, Utc(Volatile.Read(ref entry.DueTicks)), joined, skipped: false, entry.Pending.Completion.Task);
            }
        }
    }

    public DateOnly LocalDay(DateTimeOffset instant, string? timeZone = null) => LocalDays.Of(instant, timeZone ?? _options.DefaultTimeZone);

    /// <summary>Runs every pending refresh now and waits for all of them, up to the shutdown timeout; reports the rest.</summary>
    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        var waits = new List<Task>();
        foreach (var entry in _store.Entries)
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
                    start = TakePending(entry);
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
            var unfinished = _store.Entries.Where(en => en.Pending is not null || en.Running is not null).Select(en => en.Key).ToList();
            Log.DebounceFlushIncomplete(_logger, unfinished.Count, string.Join(", ", unfinished.Take(20)));
        }
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (var entry in _store.Entries)
        {
            PendingRun? abandoned;
            lock (entry)
            {
                entry.Timer?.Dispose();
                entry.Timer = null;
                abandoned = entry.Pending;
                entry.Pending = null;
            }

            // Whoever awaits a ticket that will never run learns so instead of waiting forever.
            abandoned?.Complete(SkippedResult(entry.Target!, "the host stopped before the refresh ran"));
        }
    }

    private void OnTimer(object? state)
    {
        var entry = (DebounceEntry)state!;
        (PendingRun Run, RefreshTarget Target)? start;
        lock (entry)
        {
            if (entry.Removed || entry.Running is not null)
            {
                return; // a finishing run re-arms the timer
            }

            var now = _clock.UtcTicks();
            if (entry.Pending is null)
            {
                ForgetIfIdle(entry, now);
                return;
            }

            var due = Volatile.Read(ref entry.DueTicks);
            if (now < due && !_stopping)
            {
                entry.Timer!.Change(TimeSpan.FromTicks(due - now), Timeout.InfiniteTimeSpan);
                return;
            }

            start = TakePending(entry);
        }

        if (start is { } s)
        {
            Launch(entry, s.Run, s.Target);
        }
    }

    private (PendingRun Run, RefreshTarget Target)? TakePending(DebounceEntry entry)
    {
        if (entry.Running is not null || entry.Pending is null)
        {
            return null;
        }

        var run = entry.Pending;
        entry.Pending = null;
        entry.Running = run;
        entry.RetryWait = false;
        entry.LastRunStartTicks = _clock.UtcTicks();
        return (run, entry.Target!);
    }

    private void Launch(DebounceEntry entry, PendingRun run, RefreshTarget target) =>
        _ = _tasks.Run(token => ExecuteAsync(entry, run, target, token));

    private async Task ExecuteAsync(DebounceEntry entry, PendingRun run, RefreshTarget target, CancellationToken cancellationToken)
    {
        RefreshResult result;
        var permanent = false;
        var startedAt = _time.GetUtcNow();
        try
        {
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

        Completed(entry, run, target, result, permanent);
    }

    private void Completed(DebounceEntry entry, PendingRun run, RefreshTarget target, RefreshResult result, bool permanent)
    {
        PendingRun? finished = null;
        (PendingRun Run, RefreshTarget Target)? next = null;
        lock (entry)
        {
            var now = _clock.UtcTicks();
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
                    next = TakePending(entry);
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
        }

        finished?.Complete(result);
        if (next is { } n)
        {
            Launch(entry, n.Run, n.Target);
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
            Volatile.Write(ref entry.DueTicks, due);
            entry.Pending = run;
        }
        else
        {
            // Requests arrived during the run: one pending run now covers them and the requeued ones.
            entry.Pending.Merge(run);
            if (due > Volatile.Read(ref entry.DueTicks))
            {
                Volatile.Write(ref entry.DueTicks, due);
            }
        }

        entry.RetryWait |= retryWait;
    }

    private void ForgetIfIdle(DebounceEntry entry, long now)
    {
        // Kept until MinInterval after its last run, so the next request still honours MinInterval; then forgotten.
        var forgetAt = (entry.LastRunStartTicks == DebounceEntry.None ? now : entry.LastRunStartTicks) + _minIntervalTicks;
        if (now >= forgetAt)
        {
            entry.Removed = true;
            entry.Timer?.Dispose();
            entry.Timer = null;
            _store.Remove(entry);
        }
        else
        {
            Volatile.Write(ref entry.DueTicks, forgetAt);
            Arm(entry, now);
        }
    }

    private void Arm(DebounceEntry entry, long now)
    {
        var delay = TimeSpan.FromTicks(Math.Max(0, Volatile.Read(ref entry.DueTicks) - now));
        if (entry.Timer is null)
        {
            entry.Timer = _time.CreateTimer(_onTimer, entry, delay, Timeout.InfiniteTimeSpan);
        }
        else
        {
            entry.Timer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Moves the pending run to <paramref name="settled"/> (clamped) if that is later; lock-free, so it may race with other requests.</summary>
    private void PushBack(DebounceEntry entry, long settled)
    {
        var due = Clamp(entry, settled);
        long current;
        while ((current = Volatile.Read(ref entry.DueTicks)) < due && Interlocked.CompareExchange(ref entry.DueTicks, due, current) != current)
        {
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

    private static DateTimeOffset Utc(long ticks) => new(ticks, TimeSpan.Zero);

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
