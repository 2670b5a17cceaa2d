using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Claims a schedule's ticks so that one instance of the app runs each tick.</summary>
internal interface IScheduleTickStore
{
    /// <summary>Claims <paramref name="tick"/> of <paramref name="schedule"/>; true if this instance got it.</summary>
    Task<bool> TryClaimAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken);

    /// <summary>
    /// Claims a tick missed while no instance ran: only if the schedule ran before (some tick is claimed) and no tick at or
    /// after <paramref name="tick"/> is claimed yet. True if this instance got it.
    /// </summary>
    Task<bool> TryClaimCatchUpAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken);

    /// <summary>
    /// Records that run <paramref name="run"/> of <paramref name="schedule"/> is in progress, until <paramref name="lease"/>
    /// from now, unless another run holds an unexpired lease; true if this run may go on.
    /// </summary>
    Task<bool> TryStartRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>Clears the record of <paramref name="run"/> (nothing if another run holds the schedule).</summary>
    Task EndRunAsync(string schedule, string run, CancellationToken cancellationToken);

    /// <summary>Extends <paramref name="run"/>'s hold to <paramref name="lease"/> from now; false if it no longer holds the schedule.</summary>
    Task<bool> RenewRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>The newest value of <paramref name="column"/> in <paramref name="view"/> (null when the view is empty).</summary>
    Task<DateTimeOffset?> NewestDataAsync(QualifiedName view, string column, CancellationToken cancellationToken);
}

/// <summary>Tick claims in the log schema's <c>schedule_ticks</c> table: <c>INSERT … ON CONFLICT DO NOTHING RETURNING</c>.</summary>
internal sealed class NpgsqlScheduleTickStore(RefreshDataSource dataSource, RefreshLogSchema schema, IOptions<MatViewRefreshOptions> options, TimeProvider time) : IScheduleTickStore
{
    private static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);
    private readonly string _instance = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
    private readonly string _table = SqlIdentifier.Quote(options.Value.Schema) + ".schedule_ticks";
    private readonly string _runs = SqlIdentifier.Quote(options.Value.Schema) + ".schedule_runs";
    private long _lastPrune = long.MinValue;

    public Task<bool> TryClaimAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken) =>
        ClaimAsync($"INSERT INTO {_table} (schedule, tick, claimed_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1", schedule, tick, cancellationToken);

    public Task<bool> TryClaimCatchUpAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken) =>
        ClaimAsync(
            $"INSERT INTO {_table} (schedule, tick, claimed_by) SELECT $1, $2, $3 " +
            $"WHERE EXISTS (SELECT 1 FROM {_table} WHERE schedule = $1) AND NOT EXISTS (SELECT 1 FROM {_table} WHERE schedule = $1 AND tick >= $2) " +
            "ON CONFLICT DO NOTHING RETURNING 1",
            schedule,
            tick,
            cancellationToken);

    public Task<bool> TryStartRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken) =>
        WithSchemaAsync(
            async () =>
            {
                await using var command = dataSource.Value.CreateCommand(
                    $"INSERT INTO {_runs} AS r (schedule, running_by, running_until, started_at) VALUES ($1, $2, now() + $3, now()) " +
                    "ON CONFLICT (schedule) DO UPDATE SET running_by = EXCLUDED.running_by, running_until = EXCLUDED.running_until, started_at = EXCLUDED.started_at " +
                    "WHERE r.running_until IS NULL OR r.running_until <= now() RETURNING 1");
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"{_instance}:{run}" });
                command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = lease });
                return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
            },
            cancellationToken);

    public async Task<bool> RenewRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = dataSource.Value.CreateCommand(
            $"UPDATE {_runs} SET running_until = now() + $3 WHERE schedule = $1 AND running_by = $2 RETURNING 1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"{_instance}:{run}" });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = lease });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    public async Task EndRunAsync(string schedule, string run, CancellationToken cancellationToken)
    {
        await using var command = dataSource.Value.CreateCommand(
            $"UPDATE {_runs} SET running_by = NULL, running_until = NULL WHERE schedule = $1 AND running_by = $2");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"{_instance}:{run}" });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<DateTimeOffset?> NewestDataAsync(QualifiedName view, string column, CancellationToken cancellationToken)
    {
        await using var command = dataSource.Value.CreateCommand($"SELECT max({SqlIdentifier.Quote(column)})::timestamptz FROM {view.ToSql()}");
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is DateTime newest
            ? new DateTimeOffset(DateTime.SpecifyKind(newest, DateTimeKind.Utc))
            : null;
    }

    private async Task<bool> ClaimAsync(string sql, string schedule, DateTimeOffset tick, CancellationToken cancellationToken)
    {
        var claimed = await WithSchemaAsync(() => RunAsync(sql, schedule, tick, cancellationToken), cancellationToken).ConfigureAwait(false);

        if (claimed)
        {
            await PruneAsync(tick, cancellationToken).ConfigureAwait(false);
        }

        return claimed;
    }

    private async Task<bool> WithSchemaAsync(Func<Task<bool>> statement, CancellationToken cancellationToken)
    {
        await schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await statement().ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName && options.Value.AutoCreateSchema)
        {
            // A log schema from before schedules (or a dropped table): create it and run again.
            await schema.EnsureAsync(cancellationToken, force: true).ConfigureAwait(false);
            return await statement().ConfigureAwait(false);
        }
    }

    private async Task<bool> RunAsync(string sql, string schedule, DateTimeOffset tick, CancellationToken cancellationToken)
    {
        await using var command = dataSource.Value.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = tick.ToUniversalTime() });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _instance });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    // Old claims go after the history's retention, except each schedule's latest: a schedule that ran is known to have run.
    // Best effort: a failed prune does not undo the claim, and is tried again an hour later.
    private async Task PruneAsync(DateTimeOffset tick, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastPrune);
        if (last != long.MinValue && time.GetElapsedTime(last, now) < PruneEvery)
        {
            return;
        }

        Interlocked.Exchange(ref _lastPrune, now);
        try
        {
            await using var command = dataSource.Value.CreateCommand(
                $"DELETE FROM {_table} AS t WHERE t.tick < $1 AND t.tick < (SELECT max(l.tick) FROM {_table} AS l WHERE l.schedule = t.schedule)");
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = (tick - options.Value.HistoryRetention).ToUniversalTime() });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The next prune, an hour later, catches up.
        }
    }
}
