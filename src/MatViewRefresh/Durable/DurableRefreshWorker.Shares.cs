using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>
/// Shares (<see cref="DurableRefreshOptions.ShareTargets"/>): instances divide the due targets instead of all reading the same
/// list (<see cref="DurableSql.Due"/>). Each worker notes itself in <c>refresh_workers</c> every few reads; its share is the
/// targets whose hash, modulo the workers seen lately, is its rank among them; it also takes other shares' targets once they
/// are long overdue. A stopping worker removes its row.
/// </summary>
internal sealed partial class DurableRefreshWorker
{
    private readonly Guid _workerId = Guid.NewGuid(); // this worker's row in refresh_workers
    private volatile bool _shares; // ShareTargets, until the table turns out missing or out of reach
    private long _lastNoted; // when this worker last noted itself (monotonic ticks; the loop's alone)
    private volatile bool _noted; // it has a row to remove when it stops

    /// <summary>
    /// How long a worker counts for the others' shares after it last noted itself: ten poll intervals, at least 10 s. A worker
    /// whose runs are all busy does not read (nor note itself); past this, the others divide its share among themselves until it
    /// reads again. Meanwhile a dead worker's share is run by the others once <see cref="StealAfter"/> overdue.
    /// </summary>
    internal static TimeSpan ShareLiveness(TimeSpan pollInterval) => Max(pollInterval * 10, TimeSpan.FromSeconds(10));

    /// <summary>
    /// How overdue a target of another worker's share must be for this worker to list it too: five poll intervals, at least
    /// 5 s — past what a live worker takes to pick up its own share under ordinary load (taking the other's targets sooner makes
    /// both instances try the same ones); so mostly the share of a worker that died, stalled, or cannot resolve the target.
    /// </summary>
    internal static TimeSpan StealAfter(TimeSpan pollInterval) => Max(pollInterval * 5, TimeSpan.FromSeconds(5));

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Whether this read notes the worker: the first one, then once a fifth of <see cref="ShareLiveness"/> has passed.</summary>
    private bool NoteNow() => _lastNoted == 0 || _time.GetElapsedTime(_lastNoted) >= ShareLiveness(_durable.PollInterval) / 5;

    private void Noted()
    {
        _lastNoted = _time.GetTimestamp();
        _noted = true;
    }

    /// <summary>
    /// A due read with shares failed because <c>refresh_workers</c> is missing (a schema managed by hand, not yet upgraded) or
    /// out of the app's rights: the worker reads every due target from now on, as without shares, and says so once.
    /// </summary>
    private bool SharesUnavailable(PostgresException e)
    {
        if (e.SqlState is not (PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InsufficientPrivilege)
            || !e.MessageText.Contains("refresh_workers", StringComparison.Ordinal))
        {
            return false;
        }

        _shares = false;
        Log.DurableSharesUnavailable(_logger, e.MessageText);
        return true;
    }

    /// <summary>
    /// Removes this worker from the others' shares as it stops, so they take its targets at their next read. Best effort, bounded
    /// by a few seconds: a row left behind (database unreachable, worker killed) stops counting after ShareLiveness.
    /// </summary>
    private async Task LeaveAsync()
    {
        if (!_noted)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await using var command = _dataSource.Value.CreateCommand(_sql.Leave);
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Uuid, Value = _workerId });
            await command.ExecuteNonQueryAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            Log.DurableLeaveFailed(_logger, e.Message);
        }
    }
}
