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
    private readonly Queue<string> _ready = new(); // due targets (read by the last poll, or seen coming and now due), not yet started (the loop's alone)
    private readonly PriorityQueue<string, long> _upcoming = new(); // targets seen coming due soon, by due time (monotonic ticks; the loop's alone)
    private readonly ConcurrentQueue<(string Target, long Due)> _nextDue = new(); // targets requested again during a grouped run, by due time, once it ended
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
        _shares = _durable.ShareTargets;
    }

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
            await LeaveAsync().ConfigureAwait(false);
            Log.DurableWorkerStopped(_logger, Runs);
        }
    }

    private void Launch(string key, DurableRegistration registration, CancellationToken cancellationToken) =>
        Start([key], () => RunAloneAsync(key, registration, cancellationToken));

    /// <summary>Runs <paramref name="work"/> in the background as one of MaxConcurrentRuns, with <paramref name="keys"/> marked running until it ends.</summary>
    private void Start(IReadOnlyList<string> keys, Func<Task> work, Action? ended = null)
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

                    ended?.Invoke();

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

    /// <summary>The settle delay, MaxWait and MinInterval, in that order: the parameters of <see cref="DurableSql"/>'s due rule.</summary>
    private void AddTiming(NpgsqlParameterCollection parameters)
    {
        parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.DelayMin });
        parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MaxWait });
        parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MinInterval });
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
