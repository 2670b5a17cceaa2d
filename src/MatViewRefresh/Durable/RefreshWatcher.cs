using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>
/// Installs and removes the capture triggers (see <see cref="IRefreshWatcher"/>). Every watch and unwatch runs in one
/// transaction under one advisory lock, so concurrent calls from several instances serialize. The triggers of a table are
/// shared by every target watching it: <c>install_capture</c> regenerates the table's trigger function from its watch rows
/// whenever they change.
/// </summary>
internal sealed class RefreshWatcher(
    RefreshDataSource dataSource, RefreshLogSchema schema, IMatViewCatalog catalog, RefreshQueue queue, IOptions<MatViewRefreshOptions> options, ILogger<RefreshWatcher> logger)
    : IRefreshWatcher
{
    /// <summary>The advisory lock key that serializes watch and unwatch calls (any fixed value distinct from the schema install's).</summary>
    private const long WatchLockKey = 7208416153497468926;

    /// <summary>The capture triggers of a table, by the suffix of their names (see <c>install_capture</c> in ChangeCapture.sql).</summary>
    private static readonly string[] TriggerSuffixes = ["insert", "update", "delete", "truncate"];

    // The relations a start node reads, transitively, as pg_depend records it: the rewrite rules of views and materialized
    // views reference relations and functions; functions with a SQL-standard body reference relations and functions too.
    // Function nodes are negative oids (as in PostgresMatViewCatalog). Ordinary and partitioned tables are returned, and the
    // materialized views read on the way (flagged), which a watch refuses.
    private const string BaseTables = """
        WITH RECURSIVE walk(node) AS (
            SELECT unnest($1::bigint[])
            UNION
            SELECT CASE WHEN d.refclassid = 'pg_proc'::regclass THEN -d.refobjid::bigint ELSE d.refobjid::bigint END
              FROM walk w
              LEFT JOIN pg_rewrite r ON r.ev_class = CASE WHEN w.node > 0 THEN w.node::oid END
              JOIN pg_depend d ON (d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid)
                               OR (d.classid = 'pg_proc'::regclass AND d.deptype = 'n' AND d.objid = CASE WHEN w.node < 0 THEN (-w.node)::oid END)
             WHERE d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass)
        )
        SELECT c.oid::bigint, n.nspname::text, c.relname::text, c.relkind = 'm'
          FROM walk
          JOIN pg_class c ON c.oid = CASE WHEN walk.node > 0 THEN walk.node::oid END
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT LIKE 'pg\_temp\_%' AND NOT c.oid::bigint = ANY ($1::bigint[])
         ORDER BY n.nspname, c.relname
        """;

    private const string DayColumnType = """
        SELECT CASE a.atttypid WHEN 'date'::regtype THEN 'date' WHEN 'timestamp'::regtype THEN 'timestamp'
                               WHEN 'timestamptz'::regtype THEN 'timestamptz' END
          FROM pg_attribute a WHERE a.attrelid = $1::bigint::oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        """;

    private readonly MatViewRefreshOptions _options = options.Value;

    public async Task<RefreshWatch> WatchAsync(RefreshTarget target, string? timeZone = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        timeZone ??= MaterializedViewRefresher.DefaultWindowTimeZone;
        _ = LocalDays.FindZone(timeZone);
        target = target.WithDefaultSchema(_options.DefaultSchema);
        await schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);

        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock($1)", cancellationToken, WatchLockKey).ConfigureAwait(false);

        var tables = await FindBaseTablesAsync(connection, transaction, target, cancellationToken).ConfigureAwait(false);
        var name = target.ToString();
        var log = SqlIdentifier.Quote(_options.Schema);
        var previous = await OidsAsync(connection, transaction, $"DELETE FROM {log}.watches WHERE target = $1 RETURNING table_oid::bigint", name, cancellationToken).ConfigureAwait(false);

        var watched = new List<WatchedTable>();
        foreach (var (oid, table) in tables)
        {
            string? dayColumn = null, dayType = null;
            if (target.Kind == RefreshTargetKind.Window)
            {
                dayType = await ScalarAsync<string?>(connection, transaction, DayColumnType, cancellationToken, oid, target.DateColumn).ConfigureAwait(false);
                dayColumn = dayType is null ? null : target.DateColumn;
            }

            var zone = dayType == "timestamptz" ? timeZone : null;
            await ExecuteAsync(
                connection, transaction,
                $"INSERT INTO {log}.watches (target, table_oid, table_schema, table_name, day_column, day_type, time_zone) VALUES ($1, $2::bigint::oid, $3, $4, $5, $6, $7)",
                cancellationToken, name, oid, table.Schema, table.Name, dayColumn, dayType, zone).ConfigureAwait(false);
            watched.Add(new WatchedTable { Table = table, DayColumn = dayColumn, TimeZone = zone, TriggersInstalled = true });
        }

        await InstallCaptureAsync(connection, transaction, tables.Select(t => t.Oid).Concat(previous), cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        WatchLog.WatchInstalled(logger, name, string.Join(", ", watched.Select(t => t.DayColumn is null ? t.Table.ToString() : $"{t.Table} (days of {t.DayColumn})")));
        // The worker of this instance can now run what the triggers request: window and function targets are not
        // resolvable from their name alone (an app's own registration, with its options, wins).
        queue.RegisterWatched(target, target.Kind == RefreshTargetKind.Window ? new RefreshOptions { TimeZone = timeZone } : null);
        return new RefreshWatch { Target = name, Tables = watched };
    }

    public async Task<bool> UnwatchAsync(RefreshTarget target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        target = target.WithDefaultSchema(_options.DefaultSchema);
        await schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock($1)", cancellationToken, WatchLockKey).ConfigureAwait(false);
        var name = target.ToString();
        var previous = await OidsAsync(
            connection, transaction, $"DELETE FROM {SqlIdentifier.Quote(_options.Schema)}.watches WHERE target = $1 RETURNING table_oid::bigint", name, cancellationToken).ConfigureAwait(false);
        await InstallCaptureAsync(connection, transaction, previous, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (previous.Count > 0)
        {
            WatchLog.WatchRemoved(logger, name);
        }

        return previous.Count > 0;
    }

    public async Task<IReadOnlyList<RefreshWatch>> ListAsync(CancellationToken cancellationToken = default)
    {
        await schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        var names = TriggerNames();
        await using var command = dataSource.Value.CreateCommand($"""
            SELECT w.target, w.table_schema, w.table_name, w.day_column, w.time_zone,
                   (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = w.table_oid AND t.tgname = ANY ($1)) = cardinality($1)
              FROM {SqlIdentifier.Quote(_options.Schema)}.watches w
             ORDER BY w.target, w.table_schema, w.table_name
            """);
        command.Parameters.Add(new() { Value = names });
        var watches = new List<RefreshWatch>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        List<WatchedTable>? tables = null;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var target = reader.GetString(0);
            if (watches.Count == 0 || watches[^1].Target != target)
            {
                tables = [];
                watches.Add(new RefreshWatch { Target = target, Tables = tables });
            }

            tables!.Add(new WatchedTable
            {
                Table = new QualifiedName(reader.GetString(1), reader.GetString(2)),
                DayColumn = reader.IsDBNull(3) ? null : reader.GetString(3),
                TimeZone = reader.IsDBNull(4) ? null : reader.GetString(4),
                TriggersInstalled = reader.GetBoolean(5),
            });
        }

        return watches;
    }

    /// <summary>The prefix of the trigger names: the log schema's name, cut to 40 characters (names are at most 63).</summary>
    private string TriggerPrefix => _options.Schema.Length > 40 ? _options.Schema[..40] : _options.Schema;

    /// <summary>The trigger names, deterministic per log schema: <c>matview_refresh_capture_insert</c> and so on.</summary>
    internal string[] TriggerNames()
    {
        return [.. TriggerSuffixes.Select(suffix => $"{TriggerPrefix}_capture_{suffix}")];
    }

    private async Task<List<(long Oid, QualifiedName Table)>> FindBaseTablesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, RefreshTarget target, CancellationToken cancellationToken)
    {
        long[] start;
        QualifiedName? own = null;
        var savepoint = false;
        switch (target.Kind)
        {
            case RefreshTargetKind.MaterializedView:
                var view = await ScalarAsync<long?>(
                    connection, transaction,
                    "SELECT c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'm'",
                    cancellationToken, target.Name.Schema, target.Name.Name).ConfigureAwait(false);
                if (view is null)
                {
                    var missing = await catalog.NotFoundAsync(target.Name, cancellationToken).ConfigureAwait(false);
                    throw new InvalidOperationException($"Cannot watch {target}: {missing.Message}", missing);
                }

                start = [view.Value];
                break;

            case RefreshTargetKind.Function:
                var functions = await OidsAsync(
                    connection, transaction,
                    "SELECT -p.oid::bigint FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2",
                    target.Name.Schema, cancellationToken, target.Name.Name).ConfigureAwait(false);
                if (functions.Count == 0)
                {
                    throw new InvalidOperationException($"Cannot watch {target}: function {target.Name} does not exist.");
                }

                start = [.. functions];
                break;

            default:
                // A window target: its query compiled into a temporary view, whose rewrite rule records what the query reads;
                // @from and @to become typed NULLs of the date column's type. Rolled back to a savepoint afterwards.
                own = target.Name;
                var type = await ScalarAsync<string?>(
                    connection, transaction,
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                    cancellationToken, target.Name.ToSql(), target.DateColumn).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"Cannot watch {target}: the table {target.Name} or its column \"{target.DateColumn}\" does not exist.");
                var typed = $"NULL::{type}";
                await ExecuteAsync(connection, transaction, "SAVEPOINT mvr_watch_probe", cancellationToken).ConfigureAwait(false);
                savepoint = true;
                try
                {
                    await ExecuteAsync(
                        connection, transaction,
                        $"CREATE TEMPORARY VIEW mvr_watch_probe AS SELECT 1 AS one FROM ({WindowQuery.Parse(target.Query!, typed, typed)}\n) q",
                        cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException e)
                {
                    throw new InvalidOperationException($"Cannot watch {target}: its query does not compile: {e.MessageText}", e);
                }

                start = [await ScalarAsync<long>(connection, transaction, "SELECT 'pg_temp.mvr_watch_probe'::regclass::oid::bigint", cancellationToken).ConfigureAwait(false)];
                break;
        }

        var tables = new List<(long, QualifiedName)>();
        var upstreamViews = new List<QualifiedName>();
        await using (var command = new NpgsqlCommand(BaseTables, connection, transaction))
        {
            command.Parameters.Add(new() { Value = start });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var table = new QualifiedName(reader.GetString(1), reader.GetString(2));
                if (reader.GetBoolean(3))
                {
                    upstreamViews.Add(table);
                }
                else if (!table.Equals(own))
                {
                    tables.Add((reader.GetInt64(0), table));
                }
            }
        }

        // A REFRESH fires no trigger: a change under an upstream materialized view would request this target before the
        // upstream view is refreshed, and this target would be recomputed from the upstream view's old rows, its request gone.
        if (upstreamViews.Count > 0)
        {
            throw new InvalidOperationException(
                $"Cannot watch {target}: it reads the materialized view(s) {string.Join(", ", upstreamViews)}, whose refresh fires no trigger, so a change " +
                $"under them would refresh {target} from their old rows. Watch {upstreamViews[0]} instead, and refresh {target} after it " +
                "(RefreshManyAsync with RefreshSelection.WithDependents(), or a schedule).");
        }

        if (savepoint)
        {
            await ExecuteAsync(connection, transaction, "ROLLBACK TO SAVEPOINT mvr_watch_probe", cancellationToken).ConfigureAwait(false);
        }

        if (tables.Count == 0)
        {
            throw new InvalidOperationException(
                $"Cannot watch {target}: PostgreSQL records no base table it reads (reads through plpgsql functions or dynamic SQL are not recorded in pg_depend).");
        }

        return tables;
    }

    /// <summary>
    /// Regenerates each table's capture function and triggers from its rows in <c>watches</c> (<c>install_capture</c>, which
    /// quotes every identifier and value itself), or drops them when no target watches it any more.
    /// </summary>
    private async Task InstallCaptureAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IEnumerable<long> oids, CancellationToken cancellationToken)
    {
        foreach (var oid in oids.Distinct().Order())
        {
            await ExecuteAsync(
                connection, transaction, $"SELECT {SqlIdentifier.Quote(_options.Schema)}.install_capture($1::bigint::oid, $2, $3)", cancellationToken,
                oid, _options.Schema, TriggerPrefix).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new() { Value = value ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new() { Value = value ?? DBNull.Value });
        }

        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is null or DBNull ? default! : (T)result;
    }

    private static Task<List<long>> OidsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string value, CancellationToken cancellationToken) =>
        OidsAsync(connection, transaction, sql, value, cancellationToken, []);

    private static async Task<List<long>> OidsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string value, CancellationToken cancellationToken, params object?[] more)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new() { Value = value });
        foreach (var extra in more)
        {
            command.Parameters.Add(new() { Value = extra ?? DBNull.Value });
        }

        var oids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            oids.Add(reader.GetInt64(0));
        }

        return oids;
    }
}
