using System.Text.RegularExpressions;
using Npgsql;

namespace MatViewRefresh.Cli.Commands;

/// <summary>One materialized view as list and doctor show it.</summary>
internal sealed record CatalogView(
    long Oid,
    QualifiedName Name,
    long? SizeBytes,
    long? EstimatedRows,
    bool Populated,
    bool ConcurrentCapable,
    string? NotConcurrentBecause,
    IReadOnlyList<QualifiedName> DependsOn,
    IReadOnlyList<string> Columns);

/// <summary>A session waiting for a lock, and the sessions holding it (pg_blocking_pids).</summary>
internal sealed record BlockedSession(SessionInfo Session, IReadOnlyList<SessionInfo> BlockedBy, bool InvolvesRefresh);

/// <summary>A backend from pg_stat_activity.</summary>
internal sealed record SessionInfo(int Pid, string? User, string? Application, string? State, string? WaitEvent, double? QueryAgeSeconds, double? TransactionAgeSeconds, string Query, bool IsRefresh);

/// <summary>A refresh running now: a backend running REFRESH MATERIALIZED VIEW (ours or anyone's) and the view it locks.</summary>
internal sealed record RunningRefresh(SessionInfo Session, IReadOnlyList<QualifiedName> Views, bool WaitingForLock);

/// <summary>The catalog SQL of list and doctor. Identifiers go through SqlIdentifier.Quote; values are parameters.</summary>
internal static class CatalogQueries
{
    // A backend running a refresh: plain SQL, the library's refresh_view(…) or the pg_cron procedure's CALL ….refresh(…).
    private const string IsRefreshSql = @"a.query ~* '(refresh\s+materialized\s+view|\.refresh_view\(|call\s+\S+\.refresh\()'";

    private const string Views = $$"""
        SELECT c.oid::bigint, n.nspname, c.relname,
               -- pg_total_relation_size takes a lock: behind a queued refresh it would wait, so a view being locked shows no size.
               CASE WHEN NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock') THEN pg_total_relation_size(c.oid) END,
               c.reltuples::bigint, c.relispopulated,
               {{PostgresMatViewCatalog.HasUsableUniqueIndex}},
               (SELECT string_agg(ic.relname || ': ' || concat_ws(', ',
                           CASE WHEN i.indpred IS NOT NULL THEN 'partial (WHERE)' END,
                           CASE WHEN i.indexprs IS NOT NULL OR 0 = ANY (i.indkey::int2[]) THEN 'on an expression' END,
                           CASE WHEN NOT i.indisvalid THEN 'invalid' END,
                           CASE WHEN NOT i.indimmediate THEN 'deferrable' END,
                           CASE WHEN am.amname <> 'btree' THEN am.amname || ', not btree' END), '; ' ORDER BY ic.relname)
                  FROM pg_index i
                  JOIN pg_class ic ON ic.oid = i.indexrelid
                  JOIN pg_am am ON am.oid = ic.relam
                 WHERE i.indrelid = c.oid AND i.indisunique),
               ARRAY(SELECT DISTINCT rn.nspname || E'\x01' || rc.relname
                       FROM pg_rewrite r
                       JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
                       JOIN pg_class rc ON rc.oid = d.refobjid AND rc.oid <> c.oid AND rc.relkind IN ('r', 'p', 'm', 'v', 'f')
                       JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                      WHERE r.ev_class = c.oid),
               ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'm'
         ORDER BY n.nspname, c.relname
        """;

    public static async Task<IReadOnlyList<string>> SchemasWithViewsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT DISTINCT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' ORDER BY 1", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var schemas = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            schemas.Add(reader.GetString(0));
        }

        return schemas;
    }

    public static async Task<IReadOnlyList<CatalogView>> ViewsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(Views, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var views = new List<CatalogView>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var populated = reader.GetBoolean(5);
            var usable = reader.GetBoolean(6);
            var uniqueProblems = reader.IsDBNull(7) ? null : reader.GetString(7);
            string? why = usable && populated ? null
                : !populated ? ModeDecision.NotPopulated + " (refresh it once without CONCURRENTLY)"
                : uniqueProblems is null ? "no unique index"
                : "no usable unique index (" + uniqueProblems + ")";
            var estimated = reader.GetInt64(4);
            views.Add(new CatalogView(
                reader.GetInt64(0),
                new QualifiedName(reader.GetString(1), reader.GetString(2)),
                reader.IsDBNull(3) ? null : reader.GetInt64(3),
                estimated < 0 ? null : estimated,
                populated,
                usable && populated,
                why,
                [.. reader.GetFieldValue<string[]>(8).Select(s => s.Split('\x01', 2)).Select(p => new QualifiedName(p[0], p[1])).Order()],
                reader.GetFieldValue<string[]>(9)));
        }

        return views;
    }

    /// <summary>The refresh log's rows for whole views (scope ''), by target; empty when the log does not exist.</summary>
    public static async Task<bool> LogExistsAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT to_regclass(format('%I.refresh_log', $1::text)) IS NOT NULL", connection)
        {
            Parameters = { new() { Value = schema } },
        };
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// The index that would let a view refresh CONCURRENTLY: the shortest run of its leading columns (at most 3) that is unique
    /// in the current data, checked with a bounded query; <see langword="null"/> when none is, or the check could not run.
    /// </summary>
    public static async Task<string?> SuggestUniqueIndexAsync(NpgsqlConnection connection, CatalogView view, CancellationToken cancellationToken)
    {
        if (!view.Populated || view.Columns.Count == 0 || view.EstimatedRows > 5_000_000)
        {
            return null;
        }

        for (var k = 1; k <= Math.Min(3, view.Columns.Count); k++)
        {
            var columns = view.Columns.Take(k).ToList();
            var tuple = string.Join(", ", columns.Select(c => SqlIdentifier.Quote(c)));
            var sql = $"SELECT count(*) = count(DISTINCT ({tuple}{(k == 1 ? ", true" : string.Empty)})) FROM {view.Name.ToSql()}";
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using (var timeout = new NpgsqlCommand("SET LOCAL statement_timeout = '5s'; SET LOCAL lock_timeout = '200ms'", connection, transaction))
                {
                    await timeout.ExecuteNonQueryAsync(cancellationToken);
                }

                await using var command = new NpgsqlCommand(sql, connection, transaction);
                var unique = (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
                await transaction.RollbackAsync(cancellationToken);
                if (unique)
                {
                    return $"CREATE UNIQUE INDEX ON {view.Name} ({string.Join(", ", columns.Select(c => SqlIdentifier.Quote(c, onlyWhenNeeded: true)))});";
                }
            }
            catch (PostgresException)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>The columns <see cref="ReadSession"/> reads from pg_stat_activity a, then <paramref name="more"/>, then <paramref name="where"/>.</summary>
    private static string Activity(string more, string where) => $"""
        SELECT a.pid, a.usename::text, a.application_name, a.state, a.wait_event_type || ':' || a.wait_event,
               extract(epoch FROM clock_timestamp() - a.query_start)::float8, extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
               coalesce(a.query, ''), {IsRefreshSql}{more}
          FROM pg_stat_activity a
         WHERE {where}
        """;

    private static SessionInfo ReadSession(NpgsqlDataReader reader) => new(
        reader.GetInt32(0),
        reader.IsDBNull(1) ? null : reader.GetString(1),
        reader.IsDBNull(2) ? null : reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        reader.IsDBNull(5) ? null : reader.GetDouble(5),
        reader.IsDBNull(6) ? null : reader.GetDouble(6),
        reader.GetString(7),
        reader.GetBoolean(8));

    public static async Task<IReadOnlyList<BlockedSession>> BlockedSessionsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var blocked = new List<(SessionInfo Session, int[] By)>();
        var sql = Activity(", pg_blocking_pids(a.pid)", "a.datname = current_database() AND cardinality(pg_blocking_pids(a.pid)) > 0") + " ORDER BY a.pid";
        await using (var command = new NpgsqlCommand(sql, connection))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                blocked.Add((ReadSession(reader), reader.GetFieldValue<int[]>(9)));
            }
        }

        if (blocked.Count == 0)
        {
            return [];
        }

        var holders = new Dictionary<int, SessionInfo>();
        await using (var command = new NpgsqlCommand(Activity(string.Empty, "a.pid = ANY($1)"), connection))
        {
            command.Parameters.Add(new() { Value = blocked.SelectMany(b => b.By).Distinct().ToArray() });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var session = ReadSession(reader);
                holders[session.Pid] = session;
            }
        }

        return
        [
            .. blocked.Select(b =>
            {
                var by = b.By.Select(pid => holders.TryGetValue(pid, out var s) ? s : new SessionInfo(pid, null, null, "gone", null, null, null, string.Empty, false)).ToList();
                return new BlockedSession(b.Session, by, b.Session.IsRefresh || by.Any(s => s.IsRefresh));
            }),
        ];
    }

    public static async Task<IReadOnlyList<RunningRefresh>> RunningRefreshesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // The view: the materialized view the backend locks (or waits to lock) as a refresh does, EXCLUSIVE or ACCESS EXCLUSIVE.
        var sql = Activity(
            """
            ,
                   ARRAY(SELECT n.nspname || E'\x01' || c.relname
                           FROM pg_locks l JOIN pg_class c ON c.oid = l.relation AND c.relkind = 'm' JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE l.pid = a.pid AND l.mode IN ('ExclusiveLock', 'AccessExclusiveLock')
                          ORDER BY 1),
                   EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)
            """,
            $"a.pid <> pg_backend_pid() AND a.state <> 'idle' AND a.datname = current_database() AND {IsRefreshSql}") + " ORDER BY a.query_start";
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var running = new List<RunningRefresh>();
        while (await reader.ReadAsync(cancellationToken))
        {
            running.Add(new RunningRefresh(
                ReadSession(reader),
                [.. reader.GetFieldValue<string[]>(9).Select(s => s.Split('\x01', 2)).Select(p => new QualifiedName(p[0], p[1]))],
                reader.GetBoolean(10)));
        }

        return running;
    }

    /// <summary>pg_cron: installed version, else whether the server could install it.</summary>
    public static async Task<(string? Installed, string? Available, bool Preloaded)> PgCronAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT (SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'),
                   (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_cron'),
                   current_setting('shared_preload_libraries') ~ '(^|[ ,])pg_cron($|[ ,])'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.IsDBNull(0) ? null : reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetBoolean(2));
    }

    /// <summary>What this version's log schema script creates: tables, indexes, added columns and routines (read from the shipped script).</summary>
    internal static (string[] Tables, string[] Indexes, string[] ColumnTables, string[] Columns, string[] Routines) LogObjects()
    {
        var script = RefreshLogSchema.Script("matview_refresh");
        static string[] All(string script, string pattern, int group = 1) =>
            [.. Regex.Matches(script, pattern, RegexOptions.CultureInvariant).Select(m => m.Groups[group].Value).Distinct(StringComparer.Ordinal)];
        var columns = Regex.Matches(script, @"ALTER TABLE ""matview_refresh""\.(\w+) ADD COLUMN IF NOT EXISTS (\w+)", RegexOptions.CultureInvariant);
        return (
            All(script, @"CREATE TABLE IF NOT EXISTS ""matview_refresh""\.(\w+)"),
            All(script, @"CREATE INDEX IF NOT EXISTS (\w+) ON ""matview_refresh""\."),
            [.. columns.Select(m => m.Groups[1].Value)],
            [.. columns.Select(m => m.Groups[2].Value)],
            All(script, @"CREATE OR REPLACE (?:FUNCTION|PROCEDURE) ""matview_refresh""\.(\w+)"));
    }

    /// <summary>Whether the log schema exists, and what of this version's script it lacks (a schema made by an older version).</summary>
    public static async Task<(bool Exists, IReadOnlyList<string> Missing)> LogSchemaAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        var (tables, indexes, columnTables, columns, routines) = LogObjects();
        await using var command = new NpgsqlCommand("""
            SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                   ARRAY(SELECT 'table ' || t FROM unnest($2::text[]) t WHERE to_regclass(format('%I.%I', $1, t)) IS NULL
                         UNION ALL
                         SELECT 'index ' || i FROM unnest($3::text[]) i WHERE to_regclass(format('%I.%I', $1, i)) IS NULL
                         UNION ALL
                         SELECT 'column ' || c.t || '.' || c.c FROM unnest($4::text[], $5::text[]) AS c(t, c)
                          WHERE to_regclass(format('%I.%I', $1, c.t)) IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%I.%I', $1, c.t)) AND attname = c.c AND NOT attisdropped)
                         UNION ALL
                         SELECT 'routine ' || r || '()' FROM unnest($6::text[]) r
                          WHERE NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = r))
            """, connection)
        {
            Parameters =
            {
                new() { Value = schema }, new() { Value = tables }, new() { Value = indexes },
                new() { Value = columnTables }, new() { Value = columns }, new() { Value = routines },
            },
        };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetBoolean(0), reader.GetFieldValue<string[]>(1));
    }

    /// <summary>Rows, bytes and oldest run of the history table.</summary>
    public static async Task<(long Rows, long Bytes, DateTimeOffset? Oldest)> HistorySizeAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        var table = SqlIdentifier.Quote(schema) + ".refresh_history";
        await using var command = new NpgsqlCommand(
            $"SELECT count(*), pg_total_relation_size(to_regclass(format('%I.refresh_history', $1::text))), min(started_at) FROM {table}", connection)
        {
            Parameters = { new() { Value = schema } },
        };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2));
    }

    /// <summary>Durable refresh requests waiting, per target: how many, and how long the oldest has waited (server clock).</summary>
    public static async Task<IReadOnlyList<(string Target, long Requests, TimeSpan OldestAge)>> PendingRequestsAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        var table = SqlIdentifier.Quote(schema) + ".refresh_requests";
        await using var command = new NpgsqlCommand(
            $"SELECT target, count(*), clock_timestamp() - min(requested_at) FROM {table} GROUP BY target ORDER BY min(requested_at)", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var pending = new List<(string, long, TimeSpan)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            pending.Add((reader.GetString(0), reader.GetInt64(1), reader.GetFieldValue<TimeSpan>(2)));
        }

        return pending;
    }
}
