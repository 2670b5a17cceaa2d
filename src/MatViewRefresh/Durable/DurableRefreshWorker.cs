using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>
/// Runs durable requests in this instance (see <see cref="IRefreshQueue"/>): finds due targets, claims one (a transaction-level
/// advisory lock on it, then DELETE of its visible requests, both uncommitted), refreshes it through the refresher, and commits the
/// claim only when the refresh succeeded. A failure rolls the claim back and backs the target off; a worker that dies rolls back
/// with its connection, and another instance runs the requests.
/// </summary>
internal sealed partial class DurableRefreshWorker : BackgroundService
{
    private const int MaxRemembered = 10_000;

    // The queue is read again no sooner than this many times the last read took (at most a fifth of one connection's time),
    // but not more than MaxReadSpacing later unless reads are that slow on average.
    private const int ReadSpacing = 4;
    private static readonly TimeSpan MaxReadSpacing = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan UnresolvedRetry = TimeSpan.FromMinutes(1);

    private readonly RefreshDataSource _dataSource;
    private readonly RefreshLogSchema _schema;
    private readonly RefreshQueue _queue;
    private readonly IMaterializedViewRefresher _refresher;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DurableRefreshOptions _durable;
    private readonly RefreshDebounceOptions _timing;
    private readonly DurableSql _sql;
    private readonly Func<double> _random;
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal); // targets being run, alone or in a group
    private int _active; // runs (a single target's or a group's) in flight: what MaxConcurrentRuns bounds

    // Targets not to claim before a time (monotonic ticks): busy on another instance, or not resolvable here. Bounded.
    private readonly ConcurrentDictionary<string, long> _notBefore = new(StringComparer.Ordinal);
    private readonly HashSet<string> _warnedUnresolved = new(StringComparer.Ordinal);
    private readonly Queue<string> _ready = new(); // due targets read by the last poll, not yet started (the loop's alone)
    private TaskCompletionSource _wake = NewSignal();
    private int _notifyPending;
    private long _lastPrune;
    private long _lastPoll;
    private TimeSpan _lastPollTook; // how long the last due query took (the loop's alone)
    private TimeSpan _usualPollTook; // its moving average
    private long _runs;
    private readonly string _defaultSchema;
    private readonly TimeSpan _lockTimeout;
    private volatile bool _prepare; // grouped runs prepare their statements (MatViewRefreshOptions.PrepareStatements), until a pooler refuses

    public DurableRefreshWorker(
        RefreshDataSource dataSource,
        RefreshLogSchema schema,
        RefreshQueue queue,
        IMaterializedViewRefresher refresher,
        TimeProvider time,
        IOptions<MatViewRefreshOptions> options,
        ILogger<DurableRefreshWorker> logger)
    {
        _dataSource = dataSource;
        _schema = schema;
        _queue = queue;
        _refresher = refresher;
        _time = time;
        _logger = logger;
        _durable = options.Value.Durable;
        _timing = options.Value.Debounce;
        _sql = new DurableSql(options.Value.Schema);
        _random = options.Value.Randomizer;
        _prepare = options.Value.PrepareStatements;
        _defaultSchema = options.Value.DefaultSchema;
        _lockTimeout = options.Value.LockTimeout;
        _lastPrune = time.GetTimestamp();
    }

    /// <summary>
    /// How many due targets one read of the queue fetches: enough for every run slot several times over, since the queue is read
    /// again only after the last read's cost allows. Grouped runs re-check each target is still due when they claim it, so a
    /// long list going stale costs a lookup, not an early run.
    /// </summary>
    private int ReadLimit => Math.Max(_durable.MaxConcurrentRuns * (_durable.MaxTargetsPerRun > 1 ? _durable.MaxTargetsPerRun * 4 : 32), 256);

    /// <summary>Runs started by this worker (succeeded, failed or found busy).</summary>
    internal long Runs => Interlocked.Read(ref _runs);

    /// <summary>
    /// The options of a run covering <paramref name="requests"/>: for a window target, any full request makes it a full
    /// recomputation and the days the requests name are recomputed exactly (<see cref="RefreshOptions.DayRanges"/>), with the
    /// usual window too when a request named no days (<see cref="ChangeCaptureRequests.Apply"/>); views and functions
    /// are refreshed as registered (a view is always recomputed whole).
    /// </summary>
    internal RefreshOptions RunOptions(DurableRegistration registration, ChangeCaptureRequests requests)
    {
        var options = (registration.Options ?? RefreshOptions.Default) with { Trigger = _durable.Trigger, SkipIfBusy = true };
        return registration.Target.Kind == RefreshTargetKind.Window ? requests.Apply(options, _time.GetUtcNow()) : options;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_durable.Enabled)
        {
            return;
        }

        await Task.Yield();
        Log.DurableWorkerStarted(_logger, _durable.MaxConcurrentRuns, _durable.MaxTargetsPerRun, _durable.PollInterval, _durable.ListenNotify);
        var listener = _durable.ListenNotify ? ListenAsync(stoppingToken) : Task.CompletedTask;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Interlocked.Exchange(ref _wake, NewSignal());
                TimeSpan wait;
                try
                {
                    await _schema.EnsureIfAutomaticAsync(stoppingToken).ConfigureAwait(false);
                    wait = await PollAsync(stoppingToken).ConfigureAwait(false);
                    await PruneIfDueAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    Log.DurablePollFailed(_logger, e.Message, e);
                    wait = _durable.PollInterval;
                }

                await WaitAsync(wait, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // Runs in flight were cancelled with the host: their claims roll back and the requests stay for the next worker.
            await Task.WhenAll(_running.Values.Distinct().Append(listener)).ConfigureAwait(false);
            Log.DurableWorkerStopped(_logger, Runs);
        }
    }

    /// <summary>
    /// Starts the due targets this instance has room for; returns how long to wait before looking again. One query fetches a
    /// batch of due targets (earliest first, shuffled within blocks, so instances do not all try the same one first); function
    /// and window targets are run in groups of up to MaxTargetsPerRun (one claim, one transaction), views and the rest alone.
    /// Finishing runs take the next from the batch, and the queue is read again when the batch is used up or PollInterval has
    /// passed — but never sooner than four times what the last read took: under load it runs a few times a second, not once per run.
    /// </summary>
    private async Task<TimeSpan> PollAsync(CancellationToken cancellationToken)
    {
        var free = _durable.MaxConcurrentRuns - Volatile.Read(ref _active);
        if (free <= 0)
        {
            return _durable.PollInterval; // a finishing run wakes the loop
        }

        // Targets of failed groups (and failing ones set aside) first, each alone.
        free = LaunchAlone(free, cancellationToken);

        var wait = _durable.PollInterval;
        var since = _time.GetElapsedTime(_lastPoll);
        // One read slowed by a stall must not stop reading for long; reads slow on average (a large backlog) are spaced all the same.
        var spacing = _lastPollTook * ReadSpacing;
        var usual = _usualPollTook * ReadSpacing;
        var cap = usual > MaxReadSpacing ? usual : MaxReadSpacing;
        spacing = spacing < cap ? spacing : cap;
        if (_ready.Count == 0 && since < spacing)
        {
            return spacing - since; // newly due targets wait a little: reading them at once would take the CPU the runs need
        }

        if (_ready.Count == 0 || (since >= _durable.PollInterval && since >= spacing))
        {
            wait = await ReadDueAsync(cancellationToken).ConfigureAwait(false);
        }

        var groups = _refresher is MaterializedViewRefresher { RunsInCallerTransactions: true } refresher && _durable.MaxTargetsPerRun > 1 ? refresher : null;
        var groupSize = Math.Clamp((_ready.Count + free - 1) / free, 1, _durable.MaxTargetsPerRun);
        var group = new List<(string Key, DurableRegistration Registration)>();
        var deferred = new List<string>();
        var skipped = false;
        while (free > 0 && _ready.TryDequeue(out var target))
        {
            if (_running.ContainsKey(target) || _notBefore.ContainsKey(target) || _aloneKeys.ContainsKey(target))
            {
                continue; // running, held back, or waiting to run alone
            }

            if (_queue.Resolve(target) is not { } registration)
            {
                Unresolved(target);
                skipped = true;
                continue;
            }

            if (groups is null || registration.Target.Kind is not (RefreshTargetKind.Function or RefreshTargetKind.Window) || !Groupable(target))
            {
                if (free == 1 && group.Count > 0)
                {
                    deferred.Add(target); // the last free run goes to the group being gathered; this one is first next time
                    continue;
                }

                Launch(target, registration, cancellationToken);
                free--;
                continue;
            }

            group.Add((target, registration));
            if (group.Count == groupSize)
            {
                LaunchGroup(group, groups, cancellationToken);
                group = [];
                free--;
            }
        }

        if (group.Count > 0)
        {
            LaunchGroup(group, groups!, cancellationToken);
        }

        if (deferred.Count > 0)
        {
            var rest = _ready.ToArray();
            _ready.Clear();
            foreach (var target in deferred.Concat(rest))
            {
                _ready.Enqueue(target);
            }
        }

        return _ready.Count > 0 ? _durable.PollInterval : skipped && free > 0 ? TimeSpan.Zero : wait;
    }

    /// <summary>Reads a batch of due targets into the ready list; returns the time until the next one not yet due (at most PollInterval).</summary>
    private async Task<TimeSpan> ReadDueAsync(CancellationToken cancellationToken)
    {
        _lastPoll = _time.GetTimestamp();
        var now = _lastPoll;
        foreach (var (key, until) in _notBefore)
        {
            if (until <= now)
            {
                _notBefore.TryRemove(new KeyValuePair<string, long>(key, until));
            }
        }

        // Running and skipped targets are passed over here, with the limit raised to match: comparing each candidate with
        // hundreds of them in SQL would cost more than the query itself.
        var due = new List<string>();
        var wait = _durable.PollInterval;
        await using (var command = _dataSource.Value.CreateCommand(_sql.Due))
        {
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.DelayMin });
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MaxWait });
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MinInterval });
            command.Parameters.Add(new() { Value = ReadLimit + _running.Count + _notBefore.Count });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var dueInMs = reader.GetDouble(1);
                if (dueInMs > 0)
                {
                    var until = TimeSpan.FromMilliseconds(dueInMs);
                    wait = until < wait ? until : wait;
                    break;
                }

                var target = reader.GetString(0);
                if (!_notBefore.ContainsKey(target) && !_running.ContainsKey(target))
                {
                    due.Add(target);
                }
            }
        }

        _lastPollTook = _time.GetElapsedTime(_lastPoll);
        _usualPollTook = _usualPollTook == TimeSpan.Zero ? _lastPollTook : (_usualPollTook * 0.8) + (_lastPollTook * 0.2);

        // Earliest due first, shuffled only within blocks of one round of runs: instances reading the same list then seldom try
        // the same targets at once, and no due target waits behind later ones (a whole-list shuffle left some at the back of
        // every read under load: a long tail of lag).
        _ready.Clear();
        var block = _durable.MaxConcurrentRuns * Math.Max(1, _durable.MaxTargetsPerRun);
        foreach (var target in due.Select((t, i) => (t, i)).OrderBy(x => x.i / block).ThenBy(_ => _random()).Select(x => x.t))
        {
            _ready.Enqueue(target);
        }

        return wait;
    }

    private void Launch(string key, DurableRegistration registration, CancellationToken cancellationToken) =>
        Start([key], () => RunAloneAsync(key, registration, cancellationToken));

    /// <summary>Runs <paramref name="work"/> in the background as one of MaxConcurrentRuns, with <paramref name="keys"/> marked running until it ends.</summary>
    private void Start(IReadOnlyList<string> keys, Func<Task> work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        foreach (var key in keys)
        {
            _running[key] = done.Task;
        }

        Interlocked.Increment(ref _active);
        var suppressed = ExecutionFlow.Suppress();
        try
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await work().ConfigureAwait(false);
                }
                finally
                {
                    foreach (var key in keys)
                    {
                        _running.TryRemove(key, out _);
                    }

                    Interlocked.Decrement(ref _active);
                    done.TrySetResult();
                    Wake();
                }
            }, CancellationToken.None);
        }
        finally
        {
            ExecutionFlow.Restore(suppressed);
        }
    }

    /// <summary>One target's run (<see cref="RunAsync"/>); an unexpected failure is logged and the target left alone for PollInterval.</summary>
    private async Task RunAloneAsync(string key, DurableRegistration registration, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        try
        {
            await RunAsync(key, registration, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Log.DurableRunFailed(_logger, key, 0, e.Message, 0, e);
            NotBefore(key, _durable.PollInterval);
        }
    }

    /// <summary>
    /// One run of one target: claim, refresh, settle, in two round trips of its own besides the refresh's. Every exit before the
    /// commit rolls the claim back. The settle sends COMMIT in its batch (the transaction object then sees the connection idle
    /// and its disposal sends nothing); when a statement before it fails, the server skips the COMMIT and the disposal rolls back.
    /// </summary>
    private async Task RunAsync(string key, DurableRegistration registration, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // One round trip: the claim lock (and the database clock, and the failures so far), a savepoint after it (a failed
        // refresh rolls back to it: the DELETE undone, the lock kept for the settle), and the DELETE, which deletes only under
        // the lock (see DurableSql.Claim).
        var locked = false;
        var claimedAt = default(DateTimeOffset);
        var failures = 0;
        var groups = new List<RefreshRequestRow>();
        long covered = 0;
        DateTimeOffset oldest = DateTimeOffset.MaxValue;
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(Command(_sql.Lock, key));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SAVEPOINT claim"));
            batch.BatchCommands.Add(Command(_sql.Claim, key));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            locked = reader.GetBoolean(0);
            claimedAt = reader.GetFieldValue<DateTimeOffset>(1);
            failures = reader.IsDBNull(2) ? 0 : reader.GetInt32(2);
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.FieldCount != 5)
                {
                    continue; // the savepoint's (empty) result, where the reader reports one
                }

                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    groups.Add(new RefreshRequestRow(reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateOnly>(1), reader.GetBoolean(2)));
                    covered += reader.GetInt64(3);
                    var first = reader.GetFieldValue<DateTimeOffset>(4);
                    oldest = first < oldest ? first : oldest;
                }
            }
        }

        if (!locked)
        {
            // Another instance is running it. Not committed: the transaction rolls back with its disposal, which also undoes
            // a DELETE made had the lock been freed between the two statements.
            NotBefore(key, _durable.PollInterval);
            return;
        }

        if (covered == 0)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false); // another instance ran them since the poll
            return;
        }

        var days = ChangeCaptureRequests.From(groups);
        var target = registration.Target;
        RefreshResult result;
        try
        {
            result = await _refresher.RefreshAsync(target, RunOptions(registration, days), cancellationToken).ConfigureAwait(false);
        }
        catch (MaterializedViewNotFoundException) when (target.Kind == RefreshTargetKind.MaterializedView && registration.Options is null)
        {
            Unresolved(key); // not a view: a window or function target this instance does not know; the claim rolls back
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            result = new RefreshResult
            {
                Target = target,
                Outcome = RefreshOutcome.Failed,
                RequestedMode = RefreshMode.Auto,
                StartedAt = _time.GetUtcNow(),
                FinishedAt = _time.GetUtcNow(),
                Error = new RefreshError(null, e.Message, e),
            };
        }

        if (result.Success)
        {
            double? lag = null;
            await using (var batch = new NpgsqlBatch(connection, transaction))
            {
                if (result.DataAsOf is { } asOf && result.RefreshedAt is { } refreshedAt)
                {
                    lag = Math.Max(0, (refreshedAt - oldest).TotalMilliseconds);
                    batch.BatchCommands.Add(Command(_sql.Lag, target.LogName, target.Scope, asOf, claimedAt, refreshedAt, oldest));
                }

                batch.BatchCommands.Add(Command(_sql.Succeeded, key, claimedAt));
                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT")); // in the same round trip; skipped if a statement before it fails
                await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }

            Log.DurableRunSucceeded(_logger, key, covered, days.ToString(), lag ?? double.NaN);
            return;
        }

        cancellationToken.ThrowIfCancellationRequested();
        TimeSpan retryIn;
        string? error = null;
        if (result.Outcome == RefreshOutcome.Coalesced)
        {
            retryIn = _timing.DelayMin; // another refresh of it (not queued) is running: its snapshot may predate our requests
            Log.DurableRunCoalesced(_logger, key);
        }
        else
        {
            failures++;
            retryIn = DurableTiming.Backoff(failures, _timing);
            error = result.Error?.ToString() ?? result.Outcome.ToString();
            Log.DurableRunFailed(_logger, key, failures, error, retryIn.TotalMilliseconds, null);
        }

        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("ROLLBACK TO SAVEPOINT claim")); // the requests stay; the lock is kept
            batch.BatchCommands.Add(Command(_sql.SetBack, key, failures, retryIn, (object?)error ?? DBNull.Value));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(value switch
            {
                string s => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = s },
                DateTimeOffset d => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = d.ToUniversalTime() },
                TimeSpan t => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Interval, Value = t },
                DBNull => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = DBNull.Value },
                _ => new NpgsqlParameter { Value = value },
            });
        }

        return command;
    }

    private void Unresolved(string key)
    {
        NotBefore(key, UnresolvedRetry);
        bool first;
        lock (_warnedUnresolved)
        {
            first = _warnedUnresolved.Count < MaxRemembered && _warnedUnresolved.Add(key);
        }

        if (first)
        {
            Log.DurableTargetUnresolved(_logger, key);
        }
    }

    private void NotBefore(string key, TimeSpan delay)
    {
        if (_notBefore.Count < MaxRemembered)
        {
            _notBefore[key] = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        }
    }

    private async Task PruneIfDueAsync(CancellationToken cancellationToken)
    {
        if (_time.GetElapsedTime(_lastPrune) < PruneEvery)
        {
            return;
        }

        _lastPrune = _time.GetTimestamp();
        await using var command = _dataSource.Value.CreateCommand(_sql.Prune);
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MinInterval });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Wake() => Volatile.Read(ref _wake).TrySetResult();

    private async Task WaitAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var signal = Volatile.Read(ref _wake).Task;
        if (wait > TimeSpan.Zero && !signal.IsCompleted)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var delay = Task.Delay(wait, _time, stop.Token);
            await Task.WhenAny(signal, delay).ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
