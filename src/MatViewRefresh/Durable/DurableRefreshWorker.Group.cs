using System.Collections.Concurrent;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>
/// Grouped runs (<see cref="DurableRefreshOptions.MaxTargetsPerRun"/>): several due function and window targets claimed and
/// refreshed in one transaction of the worker's, in three round trips — the claim; every refresh (a function's targets by one
/// statement); the log and history rows, lags, state and COMMIT. The requests a group covers are deleted exactly when its
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
        Start([.. members.Select(m => m.Key)], () => RunGroupAsync(members, refresher, cancellationToken));
    }

    private async Task RunGroupAsync(List<(string Key, DurableRegistration Registration)> members, MaterializedViewRefresher refresher, CancellationToken cancellationToken)
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
            else if (!await RefreshGroupAsync(connection, transaction, refresher, claimed, claimedAt, cancellationToken).ConfigureAwait(false))
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
        claim.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.DelayMin });
        claim.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MaxWait });
        claim.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = _timing.MinInterval });
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
    /// targets' log and history rows in one statement, the lags, the state and COMMIT. Returns <see langword="false"/> when the
    /// group could not be built or a statement failed (the server then skipped the rest, COMMIT included, and the caller's
    /// disposal rolls back).
    /// </summary>
    private async Task<bool> RefreshGroupAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, MaterializedViewRefresher refresher, List<GroupMember> members,
        DateTimeOffset claimedAt, CancellationToken cancellationToken)
    {
        DateTimeOffset startedAt;
        try
        {
            foreach (var member in members)
            {
                member.Options = RunOptions(member.Registration, member.Days);
                member.Options = member.Options with { LockTimeout = GroupLockTimeout(member.Options.LockTimeout ?? _lockTimeout) };
                member.Command = await refresher.PrepareInTransactionAsync(member.Registration.Target, member.Options, cancellationToken).ConfigureAwait(false);
            }

            startedAt = _time.GetUtcNow();
            await RefreshAllAsync(connection, transaction, members, cancellationToken).ConfigureAwait(false);

            // Not cancelled from here on: the refreshes are done, and stopping the host must not throw them away.
            await CommitGroupAsync(connection, transaction, members, claimedAt).ConfigureAwait(false);
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
    /// Every member's refresh, in one round trip: function targets of one function (same parameter names and value types, same
    /// timeouts) together in one statement (<see cref="RefreshSql.FunctionCalls"/>) when the function is known not to return a
    /// set; every other member by its own statements, whose last one reports its refresh.
    /// </summary>
    private async Task RefreshAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<GroupMember> members, CancellationToken cancellationToken)
    {
        var steps = await StepsAsync(connection, transaction, members, cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection, transaction) { Timeout = 0 };
        foreach (var step in steps)
        {
            var command = new NpgsqlBatchCommand(step.Statement.CommandText);
            foreach (var value in step.Statement.Parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            batch.BatchCommands.Add(command);
        }

        try
        {
            await ReadAllAsync(batch, steps, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.BatchCommand is { } failed && batch.BatchCommands.IndexOf(failed) is var index and >= 0)
        {
            // The statement that failed names the target(s) at fault: kept out of groups for a while (the group runs again alone).
            var step = steps[index];
            if (step.Reports is { } one)
            {
                NotGrouped([one]);
            }
            else if (step.Together is { } many && e.SqlState is "55P03" or "57014" or "40P01")
            {
                NotGrouped(many); // a lock wait, a timeout or a deadlock in a call of many: which target is unknown
            }

            throw;
        }
    }

    private static async Task ReadAllAsync(NpgsqlBatch batch, List<GroupStep> steps, CancellationToken cancellationToken)
    {
        // Not prepared: a function's result type may change when it is re-created, and a statement prepared before that fails
        // every later group on the connection ("cached plan must not change result type") while the target alone succeeds.
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < steps.Count; i++)
        {
            if (i > 0)
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            }

            var step = steps[i];
            if (step.Reports is { } one && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                one.Execution = NpgsqlRefreshExecutor.Read(reader);
            }
            else if (step.Together is { } many)
            {
                var rows = 0;
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    many[(int)reader.GetInt64(0) - 1].Execution = NpgsqlRefreshExecutor.Read(reader);
                    rows++;
                }

                if (rows != many.Count)
                {
                    throw new InvalidOperationException($"{many[0].Key} and {many.Count - 1} other target(s) of its function reported {rows} refresh(es).");
                }
            }
        }

        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
        {
        }
    }

    /// <summary>The statements of <see cref="RefreshAllAsync"/>, in order, with the member(s) each one reports for.</summary>
    private async Task<List<GroupStep>> StepsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<GroupMember> members, CancellationToken cancellationToken)
    {
        var steps = new List<GroupStep>();
        foreach (var shape in members.GroupBy(CallShape))
        {
            var together = shape.Key is { } key && shape.Count() > 1
                && !await ReturnsSetAsync(connection, transaction, shape.First().Command!.Target.Name, cancellationToken).ConfigureAwait(false);
            if (!together)
            {
                foreach (var member in shape)
                {
                    var statements = member.Command!.Statements;
                    for (var s = 0; s < statements.Count; s++)
                    {
                        steps.Add(new GroupStep(statements[s], s == statements.Count - 1 ? member : null, null));
                    }
                }

                continue;
            }

            var list = shape.ToList();
            var first = list[0].Command!;
            var names = first.Target.Parameters.Select(p => p.Name).ToList();
            var values = names.Select((_, i) =>
            {
                var array = Array.CreateInstance(first.Target.Parameters[i].Value!.GetType(), list.Count);
                for (var m = 0; m < list.Count; m++)
                {
                    array.SetValue(list[m].Command!.Target.Parameters[i].Value, m);
                }

                return array;
            }).ToList();

            // statement_timeout is armed when a statement starts: the one statement gets every target's share of it.
            var timeout = first.StatementTimeout <= TimeSpan.Zero ? TimeSpan.Zero : first.StatementTimeout * list.Count;
            steps.Add(new GroupStep(new RefreshStatement("SELECT set_config('statement_timeout', $1, true)", [RefreshSql.Milliseconds(timeout)]), null, null));
            steps.Add(new GroupStep(
                RefreshSql.FunctionCalls(first.Target.Name, names, values, [.. list.Select(m => m.Command!.LockKey)], first.LockTimeout, _sql.LogSchema),
                null,
                list));
        }

        return steps;
    }

    /// <summary>
    /// What function targets must share to be refreshed by one statement: the function, parameter names and value types (no
    /// nulls: an array needs one type; common types only), timeouts and the refresher lock's behaviour. <see langword="null"/>: runs by its own statements.
    /// </summary>
    private static string? CallShape(GroupMember member)
    {
        var command = member.Command!;
        var target = command.Target;
        if (target.Kind != RefreshTargetKind.Function || command.WaitForLock || !target.Parameters.All(p => p.Value is { } value && ArrayTypes.Contains(value.GetType())))
        {
            return null;
        }

        return string.Join(
            '\0',
            [target.Name.ToString(), command.LockTimeout.Ticks.ToString(CultureInfo.InvariantCulture), command.StatementTimeout.Ticks.ToString(CultureInfo.InvariantCulture),
             .. target.Parameters.Select(p => p.Name + "\u0001" + p.Value!.GetType().FullName)]);
    }

    // Parameter value types sent as arrays for a call of many targets (others: each target by its own statements).
    private static readonly HashSet<Type> ArrayTypes =
    [
        typeof(short), typeof(int), typeof(long), typeof(decimal), typeof(double), typeof(float), typeof(bool), typeof(string), typeof(Guid),
        typeof(DateOnly), typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan),
    ];

    /// <summary>Whether any function of that name returns a set (asked once a minute per name; unknown counts as yes).</summary>
    private async Task<bool> ReturnsSetAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, QualifiedName function, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (_returnsSet.TryGetValue(function, out var known) && known.Until > now)
        {
            return known.ReturnsSet;
        }

        await using var command = new NpgsqlCommand(
            "SELECT coalesce(bool_or(p.proretset), true) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2",
            connection,
            transaction);
        command.Parameters.Add(new() { Value = function.Schema });
        command.Parameters.Add(new() { Value = function.Name });
        var returnsSet = (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        _returnsSet[function] = (returnsSet, now + TimeSpan.FromMinutes(1));
        return returnsSet;
    }

    private readonly ConcurrentDictionary<QualifiedName, (bool ReturnsSet, DateTimeOffset Until)> _returnsSet = new();

    /// <summary>One statement of a group's refreshes, and the member it reports for (its last statement) or the members it refreshes together.</summary>
    private sealed record GroupStep(RefreshStatement Statement, GroupMember? Reports, List<GroupMember>? Together);

    /// <summary>
    /// The function members' log and history rows (one statement), the window members' lags, the state when MinInterval needs
    /// it, and COMMIT, in one round trip. The lags are measured to this moment, just before the commit that makes the refreshes
    /// visible.
    /// </summary>
    private async Task CommitGroupAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<GroupMember> members, DateTimeOffset claimedAt)
    {
        var cancellationToken = CancellationToken.None;
        var functions = members.Where(m => m.Command!.Target.Kind == RefreshTargetKind.Function).ToList();
        var windows = members.Where(m => m.Command!.Target.Kind != RefreshTargetKind.Function).ToList();
        await using var batch = new NpgsqlBatch(connection, transaction);

        // The last target's timeouts (set by its begin_refresh, for the rest of the transaction) are not the commit's.
        var timeouts = new NpgsqlBatchCommand("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', '0', true)");
        timeouts.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = RefreshSql.Milliseconds(_lockTimeout) });
        batch.BatchCommands.Add(timeouts);
        if (functions.Count > 0)
        {
            var record = new NpgsqlBatchCommand(_sql.RecordMany);
            AddArray(record, NpgsqlDbType.Text, functions.Select(m => m.Command!.Target.LogName));
            AddArray(record, NpgsqlDbType.Text, functions.Select(m => m.Command!.Target.Scope));
            AddArray(record, NpgsqlDbType.TimestampTz, functions.Select(m => (m.Execution!.RefreshedAt!.Value - m.Execution.ServerDuration!.Value).ToUniversalTime()));
            AddArray(record, NpgsqlDbType.TimestampTz, functions.Select(m => m.Execution!.DataAsOf!.Value.ToUniversalTime()));
            AddArray(record, NpgsqlDbType.TimestampTz, functions.Select(m => m.Execution!.RefreshedAt!.Value.ToUniversalTime()));
            AddArray(record, NpgsqlDbType.TimestampTz, functions.Select(m => m.Oldest.ToUniversalTime()));
            record.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = _durable.Trigger });
            record.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = RefreshTelemetry.ModeTag(null) });
            batch.BatchCommands.Add(record);
        }

        if (windows.Count > 0)
        {
            var lag = new NpgsqlBatchCommand(_sql.GroupLag);
            AddArray(lag, NpgsqlDbType.Text, windows.Select(m => m.Command!.Target.LogName));
            AddArray(lag, NpgsqlDbType.Text, windows.Select(m => m.Command!.Target.Scope));
            AddArray(lag, NpgsqlDbType.TimestampTz, windows.Select(m => m.Oldest.ToUniversalTime()));
            lag.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = claimedAt.ToUniversalTime() });
            batch.BatchCommands.Add(lag);
        }

        if (_timing.MinInterval > TimeSpan.Zero)
        {
            // Only MinInterval reads when a target last ran; the members have no failures to reset.
            var state = new NpgsqlBatchCommand(_sql.GroupSucceeded);
            AddArray(state, NpgsqlDbType.Text, members.Select(m => m.Key));
            state.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = claimedAt.ToUniversalTime() });
            batch.BatchCommands.Add(state);
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT")); // skipped by the server if a statement before it fails
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the timeouts
        foreach (var lagged in new[] { functions, windows }.Where(l => l.Count > 0))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                lagged[(int)reader.GetInt64(0) - 1].Lag = reader.GetDouble(1);
            }

            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        }

        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
        {
        }
    }

    /// <summary>
    /// Prepares the claim's statements on this physical connection (once: Npgsql keeps them across pool rentals), as the
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

    private static void AddArray<T>(NpgsqlBatchCommand command, NpgsqlDbType type, IEnumerable<T> values) =>
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | type, Value = values.ToArray() });

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

        public RefreshExecution? Execution { get; set; }

        public double? Lag { get; set; }
    }
}
