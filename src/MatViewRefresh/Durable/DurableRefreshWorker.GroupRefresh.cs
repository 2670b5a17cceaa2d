using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>A grouped run's second and third round trips: every member's refresh (a function's targets by one statement), then the log and history rows, lags, state, requests that came during the run, and COMMIT.</summary>
internal sealed partial class DurableRefreshWorker
{
    /// <summary>
    /// Every member's refresh, in one round trip: function targets of one function (same parameter names and value types, same
    /// timeouts) together in one statement (<see cref="RefreshSql.FunctionCalls"/>) when the catalog says the function does not
    /// return a set; every other member by its own statements, whose last one reports its refresh.
    /// </summary>
    private async Task RefreshAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<GroupMember> members, CancellationToken cancellationToken)
    {
        var steps = Steps(members);
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
    private List<GroupStep> Steps(List<GroupMember> members)
    {
        var steps = new List<GroupStep>();
        foreach (var shape in members.GroupBy(CallShape))
        {
            var together = shape.Key is not null && shape.Count() > 1;
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
            steps.Add(new GroupStep(
                new RefreshStatement(
                    "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)",
                    [RefreshSql.Milliseconds(timeout), RefreshSql.Milliseconds(first.LockTimeout)]),
                null,
                null));
            steps.Add(new GroupStep(
                RefreshSql.FunctionCalls(first.Target.Name, names, values, [.. list.Select(m => m.Command!.LockKey)], first.LockTimeout, _sql.LogSchema),
                null,
                list));
        }

        return steps;
    }

    /// <summary>
    /// What function targets must share to be refreshed by one statement: the function (not returning a set), parameter names
    /// and value types (no nulls: an array needs one type; common types only), timeouts and the refresher lock's behaviour. <see langword="null"/>: runs by its own statements.
    /// </summary>
    private static string? CallShape(GroupMember member)
    {
        var command = member.Command!;
        var target = command.Target;
        if (target.Kind != RefreshTargetKind.Function || member.ReturnsSet || command.WaitForLock || !target.Parameters.All(p => p.Value is { } value && ArrayTypes.Contains(value.GetType())))
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

    /// <summary>One statement of a group's refreshes, and the member it reports for (its last statement) or the members it refreshes together.</summary>
    private sealed record GroupStep(RefreshStatement Statement, GroupMember? Reports, List<GroupMember>? Together);

    /// <summary>
    /// The function members' log and history rows (one statement), the window members' lags, the state when MinInterval needs
    /// it, the members' requests that came during the run (<see cref="DurableSql.NextDue"/>), and COMMIT, in one round trip.
    /// The lags are measured to this moment, just before the commit that makes the refreshes visible. Returns when each member
    /// with requests left is due (monotonic ticks).
    /// </summary>
    private async Task<List<(string Target, long Due)>> CommitGroupAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<GroupMember> members, DateTimeOffset claimedAt)
    {
        var cancellationToken = CancellationToken.None;
        var functions = members.Where(m => m.Command!.Target.Kind == RefreshTargetKind.Function).ToList();
        var windows = members.Where(m => m.Command!.Target.Kind != RefreshTargetKind.Function).ToList();
        await using var batch = new NpgsqlBatch(connection, transaction);

        // The refreshes' timeouts (set for the rest of the transaction) are not the commit's.
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

        var next = new NpgsqlBatchCommand(_sql.NextDue);
        AddArray(next, NpgsqlDbType.Text, members.Select(m => m.Key));
        AddTiming(next.Parameters);
        batch.BatchCommands.Add(next);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT")); // skipped by the server if a statement before it fails
        try
        {
            await PrepareAsync(batch, cancellationToken).ConfigureAwait(false); // every group sends these: planned once per connection
            return await ReadCommitAsync(batch, functions, windows).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            ForgetPreparedIfRefused(e);
            throw;
        }
    }

    private async Task<List<(string Target, long Due)>> ReadCommitAsync(NpgsqlBatch batch, List<GroupMember> functions, List<GroupMember> windows)
    {
        var cancellationToken = CancellationToken.None;
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

        // The state's INSERT returns no rows, and a reader steps over statements without any: the reader is at the next due.
        var due = new List<(string Target, double InMs)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            due.Add((reader.GetString(0), reader.GetDouble(1)));
        }

        var read = _time.GetTimestamp();
        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
        {
        }

        return [.. due.Select(d => (d.Target, read + (long)(d.InMs / 1000 * _time.TimestampFrequency)))];
    }

    private static void AddArray<T>(NpgsqlBatchCommand command, NpgsqlDbType type, IEnumerable<T> values) =>
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | type, Value = values.ToArray() });
}
