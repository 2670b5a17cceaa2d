using System.Collections.Concurrent;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>
/// Grouped runs (<see cref="DurableRefreshOptions.MaxTargetsPerRun"/>): several due function and window targets claimed and
/// refreshed in one transaction of the worker's, in three round trips — the claim; every refresh (a function's targets by one
/// statement); the log and history rows, lags, state, the targets requested again during the run (handed back to the loop to
/// start when due), and COMMIT. The requests a group covers are deleted exactly when its
/// refreshes commit. A group that fails rolls back whole and its targets run again one at a time
/// (<see cref="DurableRefreshWorker.RunAsync"/>, in the worker's free slots), so a failing target is found, backed off and kept
/// out of later groups (a target with consecutive failures always runs alone; one whose statement failed a group, for a while).
/// </summary>
internal sealed partial class DurableRefreshWorker
{
    // Targets of failed groups, and failing targets a group set aside: the loop runs each alone in its next free slot (once).
    private readonly ConcurrentQueue<(string Key, DurableRegistration Registration)> _alone = new();
    private readonly ConcurrentDictionary<string, byte> _aloneKeys = new(StringComparer.Ordinal);

    private void RunAloneLater(string key, DurableRegistration registration)
    {
        if (_aloneKeys.TryAdd(key, 0))
        {
            _alone.Enqueue((key, registration));
        }
    }

    /// <summary>Starts, while there is room, the targets waiting to run alone that their group has let go of (in order; the others wait).</summary>
    private int LaunchAlone(int free, CancellationToken cancellationToken)
    {
        for (var waiting = _alone.Count; waiting > 0 && free > 0 && _alone.TryDequeue(out var alone); waiting--)
        {
            if (_running.ContainsKey(alone.Key))
            {
                _alone.Enqueue(alone); // its group still runs
                continue;
            }

            _aloneKeys.TryRemove(alone.Key, out _);
            Launch(alone.Key, alone.Registration, cancellationToken);
            free--;
        }

        return free;
    }

    // Targets whose statement failed a group (or whose lock wait did): run alone, not grouped, until then (monotonic ticks).
    // Their runs alone may well succeed — a lock held for seconds, a conflict with another target of the group —, so their
    // failure count cannot keep them out of groups.
    private readonly ConcurrentDictionary<string, long> _notGrouped = new(StringComparer.Ordinal);
    private static readonly TimeSpan NotGroupedFor = TimeSpan.FromMinutes(2);

    private bool Groupable(string key) =>
        !_notGrouped.TryGetValue(key, out var until) || (until <= _time.GetTimestamp() && !_notGrouped.TryRemove(new KeyValuePair<string, long>(key, until)));

    private void NotGrouped(IEnumerable<GroupMember> members)
    {
        var until = _time.GetTimestamp() + (long)(NotGroupedFor.TotalSeconds * _time.TimestampFrequency);
        foreach (var member in members.Where(_ => _notGrouped.Count < MaxRemembered))
        {
            _notGrouped[member.Key] = until;
        }
    }

    // Targets offered to grouped claims, by what the claim found: refreshed, empty, failing (run alone), not due, held elsewhere.
    private readonly long[] _groupStats = new long[5];

    private long _followUps;

    /// <summary>Targets that grouped runs found requested again while they ran, handed to the loop to start when due.</summary>
    internal long FollowUps => Interlocked.Read(ref _followUps);

    /// <summary>Targets offered to grouped claims: refreshed, found empty, failing (run alone), not due, held by another instance.</summary>
    internal IReadOnlyList<long> GroupStats => [.. _groupStats.Select(v => Interlocked.Read(ref v))];

    /// <summary>
    /// How long a target in a group waits for a lock (its refresh's <c>lock_timeout</c>): at most <see cref="MaxGroupLockWait"/>.
    /// A lock held elsewhere on one target's rows must not hold up every target grouped with it for the full LockTimeout: the
    /// group fails soon instead, and each target runs again alone, where the blocked one waits its full LockTimeout.
    /// </summary>
    internal static TimeSpan GroupLockTimeout(TimeSpan lockTimeout) => lockTimeout > TimeSpan.Zero && lockTimeout < MaxGroupLockWait ? lockTimeout : MaxGroupLockWait;

    internal static readonly TimeSpan MaxGroupLockWait = TimeSpan.FromSeconds(1);

    private void LaunchGroup(List<(string Key, DurableRegistration Registration)> members, MaterializedViewRefresher refresher, CancellationToken cancellationToken)
    {
        // One order for every group: two groups that touch the same rows take their locks in the same order.
        members.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        // Targets requested again while the group ran are handed to the loop once they are no longer running: taken sooner,
        // the loop would pass them over as running, and only a later read would find them (overdue, by then).
        var followUps = new List<(string Target, long Due)>();
        Start(
            [.. members.Select(m => m.Key)],
            () => RunGroupAsync(members, refresher, followUps, cancellationToken),
            () =>
            {
                foreach (var followUp in followUps)
                {
                    _nextDue.Enqueue(followUp);
                }

                Interlocked.Add(ref _followUps, followUps.Count);
            });
    }

    private async Task RunGroupAsync(
        List<(string Key, DurableRegistration Registration)> members, MaterializedViewRefresher refresher, List<(string Target, long Due)> followUps,
        CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var (claimedAt, claims) = await ClaimGroupAsync(connection, transaction, members, cancellationToken).ConfigureAwait(false);
            var claimed = new List<GroupMember>();
            foreach (var (key, registration) in members)
            {
                var claim = claims[key];
                Interlocked.Increment(ref _groupStats[claim.Locked ? claim.Due ? claim.Healthy ? claim.Covered > 0 ? 0 : 1 : 2 : 3 : 4]);
                if (!claim.Locked)
                {
                    NotBefore(key, _durable.PollInterval); // another instance is running it (or a refresh of it is)
                }
                else if (!claim.Due)
                {
                    // Not due (any more: run since the list was read, say): left for a later read.
                }
                else if (!claim.Healthy)
                {
                    RunAloneLater(key, registration); // failing lately: alone, once this group has let go of it
                }
                else if (claim.Covered > 0)
                {
                    claimed.Add(new GroupMember(key, registration, ChangeCaptureRequests.From(claim.Rows), claim.Covered, claim.Oldest));
                }
            }

            if (claimed.Count == 0)
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (!await RefreshGroupAsync(connection, transaction, refresher, claimed, claimedAt, followUps, cancellationToken).ConfigureAwait(false))
            {
                // Rolled back with the transaction's disposal: every request stays, and each target runs again alone — in the
                // worker's free slots, as soon as this group has let go of them.
                foreach (var member in claimed)
                {
                    RunAloneLater(member.Key, member.Registration);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // The claim itself failed (the connection, say): nothing was deleted. The targets are tried again at the next poll.
            ForgetPreparedIfRefused(e);
            Log.DurablePollFailed(_logger, e.Message, e);
            foreach (var (key, _) in members)
            {
                NotBefore(key, _durable.PollInterval);
            }
        }
    }

    /// <summary>The claim's round trip: <see cref="DurableSql.LockGroup"/> (and the database clock), then <see cref="DurableSql.ClaimGroup"/>, read per target.</summary>
    private async Task<(DateTimeOffset ClaimedAt, Dictionary<string, GroupClaim> Claims)> ClaimGroupAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, List<(string Key, DurableRegistration Registration)> members, CancellationToken cancellationToken)
    {
        var claims = members.ToDictionary(m => m.Key, _ => new GroupClaim(), StringComparer.Ordinal);
        await using var batch = new NpgsqlBatch(connection, transaction);
        var locks = new NpgsqlBatchCommand(_sql.LockGroup);
        locks.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = members.Select(m => m.Key).ToArray() });
        batch.BatchCommands.Add(locks);
        var claim = new NpgsqlBatchCommand(_sql.ClaimGroup);
        claim.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = members.Select(m => m.Key).ToArray() });
        AddTiming(claim.Parameters);
        claim.Parameters.Add(new()
        {
            NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint,
            Value = members.Select(m => RefreshSql.LockKey(m.Registration.Target.WithDefaultSchema(_defaultSchema))).ToArray(),
        });
        batch.BatchCommands.Add(claim);
        await PrepareAsync(batch, cancellationToken).ConfigureAwait(false);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var claimedAt = reader.GetFieldValue<DateTimeOffset>(0);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = claims[reader.GetString(0)];
            state.Healthy = reader.GetBoolean(1);
            state.Due = reader.GetBoolean(2);
            state.Locked = reader.GetBoolean(3);
            var count = reader.GetInt64(7);
            if (count > 0)
            {
                state.Rows.Add(new RefreshRequestRow(
                    reader.IsDBNull(4) ? null : reader.GetFieldValue<DateOnly>(4), reader.IsDBNull(5) ? null : reader.GetFieldValue<DateOnly>(5), reader.GetBoolean(6)));
                state.Covered += count;
                var oldest = reader.GetFieldValue<DateTimeOffset>(8);
                state.Oldest = oldest < state.Oldest ? oldest : state.Oldest;
            }
        }

        return (claimedAt, claims);
    }

    /// <summary>
    /// The group's refreshes, then its commit: each target's refresh statements in one round trip (its lock, timeouts and refresh;
    /// a window target also writes its log and history rows, a function target reports them), then in another the function
    /// targets' log and history rows in one statement, the lags, the state, the targets' requests that came during the run
    /// (added to <paramref name="followUps"/> with when each is due, once committed) and COMMIT. Returns <see langword="false"/>
    /// when the group could not be built or a statement failed (the server then skipped the rest, COMMIT included, and the
    /// caller's disposal rolls back).
    /// </summary>
    private async Task<bool> RefreshGroupAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, MaterializedViewRefresher refresher, List<GroupMember> members,
        DateTimeOffset claimedAt, List<(string Target, long Due)> followUps, CancellationToken cancellationToken)
    {
        DateTimeOffset startedAt;
        try
        {
            foreach (var member in members)
            {
                member.Options = RunOptions(member.Registration, member.Days);
                member.Options = member.Options with { LockTimeout = GroupLockTimeout(member.Options.LockTimeout ?? _lockTimeout) };
                (member.Command, member.ReturnsSet) = await refresher.PrepareInTransactionAsync(member.Registration.Target, member.Options, cancellationToken).ConfigureAwait(false);
            }

            startedAt = _time.GetUtcNow();
            var began = _time.GetTimestamp();
            await RefreshAllAsync(connection, transaction, members, cancellationToken).ConfigureAwait(false);
            NoteTargetCost(_time.GetElapsedTime(began), members);

            // Not cancelled from here on: the refreshes are done, and stopping the host must not throw them away.
            followUps.AddRange(await CommitGroupAsync(connection, transaction, members, claimedAt).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Log.DurableGroupFailed(_logger, members.Count, e.Message, e);
            return false;
        }

        // Committed: what follows only reports it.
        var finishedAt = _time.GetUtcNow();
        foreach (var member in members)
        {
            Interlocked.Increment(ref _runs);
            await refresher.CommittedInTransactionAsync(member.Command!, member.Options!, member.Execution ?? RefreshExecution.Empty, startedAt, finishedAt).ConfigureAwait(false);
            Log.DurableRunSucceeded(_logger, member.Key, member.Covered, member.Days.ToString(), member.Lag ?? double.NaN);
        }

        return true;
    }

    /// <summary>
    /// Prepares the claim's (and the commit's) statements on this physical connection (once: Npgsql keeps them across pool rentals), as the
    /// executor does (<see cref="MatViewRefreshOptions.PrepareStatements"/>): they run for every group, and parsing and planning
    /// them each time would cost the server more than running them.
    /// </summary>
    private async Task PrepareAsync(NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        if (_prepare)
        {
            await batch.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A pooler in transaction mode (PgBouncer before 1.21) shares server connections between clients: a prepared statement is
    /// then missing (26000), taken (42P05) or another's (08P01) — when preparing, or later when running it. Nothing was
    /// committed; stop preparing (the targets are tried again), as the executor does.
    /// </summary>
    private void ForgetPreparedIfRefused(Exception e)
    {
        if (_prepare && e is PostgresException { SqlState: "26000" or "42P05" or "08P01" } refused)
        {
            _prepare = false;
            Log.PreparedStatementsUnavailable(_logger, refused.MessageText);
        }
    }

    /// <summary>What the group's claim found for one target.</summary>
    private sealed class GroupClaim
    {
        /// <summary>Without consecutive failures (one failing lately runs alone).</summary>
        public bool Healthy { get; set; }

        /// <summary>Still due: the ready list may be stale, and another instance may have run the target since it was read.</summary>
        public bool Due { get; set; }

        public bool Locked { get; set; }

        public List<RefreshRequestRow> Rows { get; } = [];

        public long Covered { get; set; }

        public DateTimeOffset Oldest { get; set; } = DateTimeOffset.MaxValue;
    }

    /// <summary>A claimed target of a group, and what its refresh reported.</summary>
    private sealed class GroupMember(string key, DurableRegistration registration, ChangeCaptureRequests days, long covered, DateTimeOffset oldest)
    {
        public string Key { get; } = key;

        public DurableRegistration Registration { get; } = registration;

        public ChangeCaptureRequests Days { get; } = days;

        public long Covered { get; } = covered;

        public DateTimeOffset Oldest { get; } = oldest;

        public RefreshOptions? Options { get; set; }

        public RefreshCommand? Command { get; set; }

        /// <summary>The function returns a set (or may: unknown): it cannot be one row of a call of many.</summary>
        public bool ReturnsSet { get; set; }

        public RefreshExecution? Execution { get; set; }

        public double? Lag { get; set; }
    }
}
