using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MatViewRefresh;

/// <summary>Builds the SQL of a refresh transaction and of a failure record. Identifiers are quoted; values are parameters.</summary>
internal static class RefreshSql
{
    /// <summary>A 64-bit advisory lock key derived from the target's identity (stable across processes and restarts).</summary>
    public static long LockKey(RefreshTarget target)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"matview_refresh\0{target.Name.Schema}\0{target.Name.Name}\0{target.Scope}"), hash);
        return BinaryPrimitives.ReadInt64BigEndian(hash);
    }

    /// <summary>
    /// A view: one statement, <c>refresh_view(…)</c>, which takes the lock, decides the mode from the catalog as it is
    /// now (for <see cref="RefreshMode.Auto"/>), refreshes and writes the log. A function: <c>begin_refresh</c>, the
    /// call, <c>finish_refresh</c>, in one batch. Either way one transaction and one round trip.
    /// </summary>
    public static RefreshCommand Refresh(
        RefreshTarget target, RefreshMode? mode, int attempt, bool waitForLock, TimeSpan lockTimeout, TimeSpan statementTimeout,
        string trigger, string logSchema, bool countRows)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var key = LockKey(target);
        var lockTimeoutText = Milliseconds(lockTimeout);
        var statementTimeoutText = Milliseconds(statementTimeout);
        RefreshStatement[] statements;
        if (target.Kind == RefreshTargetKind.Function)
        {
            mode = null;
            statements =
            [
                new($"SELECT {schema}.begin_refresh($1, $2, $3, $4)", [key, waitForLock, lockTimeoutText, statementTimeoutText]),
                FunctionCall(target),
                new(
                    $"SELECT data_as_of, refreshed_at, duration_ms, row_count FROM {schema}.finish_refresh($1, $2, $3, $4, $5, $6::regclass, NULL::timestamptz)",
                    [target.LogName, target.Scope, RefreshTelemetry.ModeTag(null), attempt, trigger, null]),
            ];
        }
        else
        {
            mode ??= RefreshMode.Auto;
            var refresh = new RefreshStatement(
                $"SELECT mode, mode_reason, data_as_of, refreshed_at, duration_ms, row_count FROM {schema}.refresh_view($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                [target.Name.Schema, target.Name.Name, RefreshTelemetry.ModeTag(mode), key, waitForLock, lockTimeoutText, statementTimeoutText,
                 target.LogName, attempt, trigger, countRows]);

            statements = [SetStatementTimeout(statementTimeoutText), refresh];
        }

        return Command(target, mode, attempt, key, waitForLock, lockTimeout, statementTimeout, trigger, statements);
    }

    /// <summary>
    /// A function target refreshed in a caller's transaction whose log and history rows are written later, for many targets in
    /// one statement (<see cref="RecordMany"/>): <c>begin_refresh</c>, the call, then what <c>finish_refresh</c> would have
    /// recorded — data as of, when the refresh finished, how long it took — read back instead of written.
    /// </summary>
    public static RefreshCommand FunctionLogDeferred(
        RefreshTarget target, int attempt, bool waitForLock, TimeSpan lockTimeout, TimeSpan statementTimeout, string trigger, string logSchema)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var key = LockKey(target);
        return Command(target, null, attempt, key, waitForLock, lockTimeout, statementTimeout, trigger,
        [
            new($"SELECT {schema}.begin_refresh($1, $2, $3, $4)", [key, waitForLock, Milliseconds(lockTimeout), Milliseconds(statementTimeout)]),
            FunctionCall(target),
            new(
                "SELECT current_setting('matview_refresh.data_as_of')::timestamptz AS data_as_of, clock_timestamp() AS refreshed_at, " +
                "extract(epoch FROM clock_timestamp() - current_setting('matview_refresh.started_at')::timestamptz)::float8 * 1000 AS duration_ms",
                []),
        ]);
    }

    /// <summary>
    /// Many targets of one function (same parameter names, each parameter's values of one type, in <paramref name="values"/>:
    /// one typed array per parameter) refreshed by one statement, row by row in order: for each target, its refresher lock
    /// <paramref name="keys"/> (never waiting: a target whose lock is held goes through <c>begin_refresh</c>, which fails it
    /// with MVR01 as a single refresh would), when it started and its data as of (as <c>begin_refresh</c> notes them), the
    /// call, then what <see cref="FunctionLogDeferred"/> reads back, with the target's position (<c>n</c>, from 1). One
    /// statement instead of three per target, and the function's plan is made once for all of them (an SQL-language
    /// function's is otherwise made again at every call); no PL/pgSQL call per target. The lock and statement timeouts are the
    /// caller's to set before the statement (a statement timeout armed before it bounds the whole of it). The function must
    /// not return a set (each target is one row).
    /// </summary>
    public static RefreshStatement FunctionCalls(
        QualifiedName function, IReadOnlyList<string> parameterNames, IReadOnlyList<Array> values, long[] keys, TimeSpan lockTimeout, string logSchema)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var arguments = string.Join(", ", parameterNames.Select((p, i) => $"{SqlIdentifier.Quote(p)} => t.p{i}"));
        var columns = string.Concat(parameterNames.Select((_, i) => $", p{i}"));
        var arrays = string.Concat(parameterNames.Select((_, i) => $", ${i + 3}"));

        // Evaluated in order for each row: the lateral subquery (lock, start, data as of: its inner subquery is volatile, so never
        // flattened into the outer query) before the outer row's call and clock. A lock found held goes through begin_refresh:
        // MVR01, or, if it was freed in between, taken there and the start noted after it.
        return new RefreshStatement(
            $"SELECT t.n, {function.ToSql()}({arguments}), b.data_as_of, clock_timestamp() AS refreshed_at, " +
            "extract(epoch FROM clock_timestamp() - b.started_at)::float8 * 1000 AS duration_ms " +
            $"FROM unnest($1::bigint[]{arrays}) WITH ORDINALITY AS t(refresh_key{columns}, n), " +
            "LATERAL (SELECT s.started_at, CASE WHEN current_setting('transaction_isolation') = 'read committed' THEN s.started_at ELSE transaction_timestamp() END AS data_as_of " +
            "FROM (SELECT CASE WHEN pg_try_advisory_xact_lock(t.refresh_key) THEN clock_timestamp() " +
            $"ELSE (SELECT clock_timestamp() FROM (SELECT {schema}.begin_refresh(t.refresh_key, false, $2, current_setting('statement_timeout'))) l) END AS started_at) s) b",
            [keys, Milliseconds(lockTimeout), .. values]);
    }

    /// <summary>
    /// The log and history rows of many successful function refreshes, as <c>finish_refresh</c> writes them, in one statement:
    /// $1 targets, $2 scopes, $3 when each started, $4 its data as of, $5 when it finished, $6 the oldest request it covered
    /// (its change-to-visible lag is measured to now, just before the caller commits; NULL: none), $7 the trigger, $8 the mode
    /// recorded (a function's). Returns each one's position in $1 and its lag.
    /// </summary>
    public static string RecordMany(string logSchema)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        return $"""
            WITH m AS (
                SELECT m.*, extract(epoch FROM m.finished_at - m.started_at)::float8 * 1000 AS duration_ms,
                       greatest(0, extract(epoch FROM clock_timestamp() - m.oldest)::float8 * 1000) AS lag_ms
                  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
                       WITH ORDINALITY AS m(target, scope, started_at, data_as_of, finished_at, oldest, n)),
            h AS (
                INSERT INTO {schema}.refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger, data_as_of, lag_ms)
                SELECT m.target, m.scope, m.started_at, m.duration_ms, true, $8, 1, $7, m.data_as_of, m.lag_ms FROM m),
            l AS (
                INSERT INTO {schema}.refresh_log AS l
                    (target, scope, last_refreshed_at, data_as_of, duration_ms, mode, row_count, last_attempt_at, last_error, last_error_state)
                SELECT DISTINCT ON (m.target, m.scope) m.target, m.scope, m.finished_at, m.data_as_of, m.duration_ms, $8, NULL::bigint, m.finished_at, NULL, NULL
                  FROM m ORDER BY m.target, m.scope, m.finished_at DESC
                ON CONFLICT (target, scope) DO UPDATE SET
                    last_refreshed_at = EXCLUDED.last_refreshed_at, data_as_of = EXCLUDED.data_as_of, duration_ms = EXCLUDED.duration_ms,
                    mode = EXCLUDED.mode, row_count = EXCLUDED.row_count, last_attempt_at = EXCLUDED.last_attempt_at,
                    last_error = NULL, last_error_state = NULL)
            SELECT m.n, m.lag_ms FROM m
            """;
    }

    /// <summary>
    /// A window target: <c>refresh_window(…)</c>, one statement that takes the lock, decides the strategy (for
    /// <see cref="WindowStrategy.Smart"/>, from the history in the same transaction), deletes the window's rows, inserts the
    /// query's, and writes the log. The DELETE, INSERT and newest-value statements are built here with quoted identifiers;
    /// the window's bounds are parameters, as local days and as the instants of the local midnights.
    /// </summary>
    public static RefreshCommand Window(
        RefreshTarget target, WindowStrategy strategy, LocalWindow window, TimeSpan fullRefreshAfter, int attempt, bool waitForLock,
        TimeSpan lockTimeout, TimeSpan statementTimeout, string trigger, string logSchema)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var table = target.Name.ToSql();
        var column = SqlIdentifier.Quote(target.DateColumn!);
        var key = LockKey(target);
        var statementTimeoutText = Milliseconds(statementTimeout);
        var refresh = new RefreshStatement(
            $"SELECT strategy, mode_reason, data_as_of, refreshed_at, duration_ms, rows_deleted, rows_inserted FROM {schema}.refresh_window($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            [table, target.DateColumn, StrategyTag(strategy), fullRefreshAfter,
             window.FromDay, window.ToDay, window.From, window.To,
             $"DELETE FROM {table} WHERE {column} >= $1 AND {column} < $2",
             $"DELETE FROM {table}",
             $"INSERT INTO {table} SELECT * FROM ({WindowQuery.Parse(target.Query!)}\n) q",
             $"SELECT max({column})::timestamptz FROM {table}",
             key, waitForLock, Milliseconds(lockTimeout), statementTimeoutText, target.LogName, target.Scope, attempt, trigger]);
        return Command(target, null, attempt, key, waitForLock, lockTimeout, statementTimeout, trigger, [SetStatementTimeout(statementTimeoutText), refresh]);
    }

    /// <summary>The refresh command of any target: its lock, timeouts and statements.</summary>
    private static RefreshCommand Command(
        RefreshTarget target, RefreshMode? mode, int attempt, long key, bool waitForLock, TimeSpan lockTimeout, TimeSpan statementTimeout, string trigger,
        RefreshStatement[] statements) => new()
        {
            Kind = RefreshCommandKind.Refresh,
            Target = target,
            Mode = mode,
            Attempt = attempt,
            LockKey = key,
            WaitForLock = waitForLock,
            LockTimeout = lockTimeout,
            StatementTimeout = statementTimeout,
            Trigger = trigger,
            Statements = statements,
        };

    /// <summary>
    /// A window target's given days: <c>refresh_window_days(…)</c>, one statement that takes the lock, deletes and recomputes
    /// each run of <paramref name="merged"/> days (passed as local days and as the instants of their local midnights in
    /// <paramref name="timeZone"/>, end exclusive), and writes the log with a mode listing the days.
    /// </summary>
    public static RefreshCommand WindowDays(
        RefreshTarget target, IReadOnlyList<DayRange> merged, string timeZone, int attempt, bool waitForLock,
        TimeSpan lockTimeout, TimeSpan statementTimeout, string trigger, string logSchema)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var table = target.Name.ToSql();
        var column = SqlIdentifier.Quote(target.DateColumn!);
        var key = LockKey(target);
        var zone = LocalDays.FindZone(timeZone);
        var statementTimeoutText = Milliseconds(statementTimeout);
        var firstDays = merged.Select(r => r.First).ToArray();
        var endDays = merged.Select(r => r.Last.AddDays(1)).ToArray();
        var mode = DayRanges.Mode(merged);
        var refresh = new RefreshStatement(
            $"SELECT strategy, mode_reason, data_as_of, refreshed_at, duration_ms, rows_deleted, rows_inserted FROM {schema}.refresh_window_days($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            [table, target.DateColumn, firstDays, endDays,
             firstDays.Select(d => LocalWindow.Midnight(d, zone)).ToArray(), endDays.Select(d => LocalWindow.Midnight(d, zone)).ToArray(),
             $"DELETE FROM {table} WHERE {column} >= $1 AND {column} < $2",
             $"INSERT INTO {table} SELECT * FROM ({WindowQuery.Parse(target.Query!)}\n) q",
             mode, "given days requested: " + mode["incremental (".Length..^1],
             key, waitForLock, Milliseconds(lockTimeout), statementTimeoutText, target.LogName, target.Scope, attempt, trigger]);
        return Command(target, null, attempt, key, waitForLock, lockTimeout, statementTimeout, trigger, [SetStatementTimeout(statementTimeoutText), refresh]);
    }

    public static string StrategyTag(WindowStrategy strategy) => strategy switch
    {
        WindowStrategy.Full => "full",
        WindowStrategy.Incremental => "incremental",
        _ => "smart",
    };

    /// <summary>Deletes history rows older than <paramref name="retention"/>: its own short transaction, never the refresh's.</summary>
    public static RefreshCommand Prune(RefreshTarget target, string logSchema, TimeSpan retention) => new()
    {
        Kind = RefreshCommandKind.PruneHistory,
        Target = target,
        Mode = null,
        Attempt = 1,
        LockKey = 0,
        WaitForLock = false,
        LockTimeout = TimeSpan.Zero,
        StatementTimeout = TimeSpan.Zero,
        Trigger = string.Empty,
        Statements = [new($"SELECT {SqlIdentifier.Quote(logSchema)}.prune_history($1) AS row_count", [retention])],
    };

    public static RefreshCommand RecordFailure(
        RefreshTarget target, RefreshMode? mode, int attempts, string trigger, string logSchema,
        DateTimeOffset startedAt, TimeSpan duration, RefreshError error)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var statement = new RefreshStatement(
            $"""
            WITH h AS (
                INSERT INTO {schema}.refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger, error_state, error_message)
                VALUES ($1, $2, $3, $4, false, $5, $6, $7, $8, $9)
            )
            INSERT INTO {schema}.refresh_log AS l (target, scope, last_attempt_at, last_error, last_error_state)
            VALUES ($1, $2, clock_timestamp(), $9, $8)
            ON CONFLICT (target, scope) DO UPDATE SET
                last_attempt_at = EXCLUDED.last_attempt_at, last_error = EXCLUDED.last_error, last_error_state = EXCLUDED.last_error_state
            """,
            [target.LogName, target.Scope, startedAt.ToUniversalTime(), duration.TotalMilliseconds, target.Kind == RefreshTargetKind.Window ? "window" : RefreshTelemetry.ModeTag(mode), attempts, trigger, error.SqlState, error.Message]);
        return new RefreshCommand
        {
            Kind = RefreshCommandKind.RecordFailure,
            Target = target,
            Mode = mode,
            Attempt = attempts,
            LockKey = LockKey(target),
            WaitForLock = false,
            LockTimeout = TimeSpan.Zero,
            StatementTimeout = TimeSpan.Zero,
            Trigger = trigger,
            Statements = [statement],
        };
    }

    /// <summary><c>SELECT "schema"."fn"("p1" =&gt; $1, …)</c>: named notation, so parameter order and defaults are the function's business.</summary>
    private static RefreshStatement FunctionCall(RefreshTarget target)
    {
        var arguments = string.Join(", ", target.Parameters.Select((p, i) => $"{SqlIdentifier.Quote(p.Name)} => ${i + 1}"));
        return new RefreshStatement($"SELECT {target.Name.ToSql()}({arguments})", [.. target.Parameters.Select(p => p.Value)]);
    }

    /// <summary>
    /// statement_timeout is armed when a statement starts, so a refresh function cannot set its own: this statement goes
    /// before it in the same transaction — also for "0" (none), which must override a role's or database's default.
    /// </summary>
    private static RefreshStatement SetStatementTimeout(string milliseconds) =>
        new("SELECT set_config('statement_timeout', $1, true)", [milliseconds]);

    internal static string Milliseconds(TimeSpan value) =>
        value <= TimeSpan.Zero ? "0" : Math.Max(1, (long)Math.Ceiling(value.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms";
}
