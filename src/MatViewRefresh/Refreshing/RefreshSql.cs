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

    public static RefreshCommand Refresh(
        RefreshTarget target, RefreshMode mode, int attempt, bool waitForLock, TimeSpan lockTimeout, TimeSpan statementTimeout,
        string trigger, string logSchema, bool countRows, TimeSpan? pruneOlderThan)
    {
        var schema = SqlIdentifier.Quote(logSchema);
        var key = LockKey(target);
        var view = target.Name.ToSql();
        var statements = new List<RefreshStatement>(5)
        {
            new("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)", [Milliseconds(lockTimeout), Milliseconds(statementTimeout)]),
            new($"SELECT {schema}.begin_refresh($1, $2)", [key, waitForLock]),
            new(mode == RefreshMode.Concurrent ? $"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" : $"REFRESH MATERIALIZED VIEW {view}", []),
        };
        if (pruneOlderThan is { } retention)
        {
            statements.Add(new($"DELETE FROM {schema}.refresh_history WHERE started_at < clock_timestamp() - $1::interval", [retention]));
        }

        var rowCount = countRows ? $"(SELECT count(*) FROM {view})" : "NULL::bigint";
        statements.Add(new(
            $"""
            WITH t AS MATERIALIZED (
                SELECT current_setting('matview_refresh.started_at')::timestamptz AS started_at, clock_timestamp() AS finished_at
            ), h AS (
                INSERT INTO {schema}.refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger)
                SELECT $1, $2, t.started_at, extract(epoch FROM t.finished_at - t.started_at) * 1000, true, $3, $4, $5 FROM t
            )
            INSERT INTO {schema}.refresh_log AS l (target, scope, last_refreshed_at, duration_ms, mode, row_count, last_attempt_at, last_error, last_error_state)
            SELECT $1, $2, t.finished_at, extract(epoch FROM t.finished_at - t.started_at) * 1000, $3, {rowCount}, t.finished_at, NULL, NULL FROM t
            ON CONFLICT (target, scope) DO UPDATE SET
                last_refreshed_at = EXCLUDED.last_refreshed_at, duration_ms = EXCLUDED.duration_ms, mode = EXCLUDED.mode,
                row_count = EXCLUDED.row_count, last_attempt_at = EXCLUDED.last_attempt_at, last_error = NULL, last_error_state = NULL
            RETURNING l.last_refreshed_at, l.duration_ms, l.row_count
            """,
            [target.ToString(), target.Scope, RefreshTelemetry.ModeTag(mode), attempt, trigger]));

        return new RefreshCommand
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
    }

    public static RefreshCommand RecordFailure(
        RefreshTarget target, RefreshMode mode, int attempts, string trigger, string logSchema,
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
            [target.ToString(), target.Scope, startedAt.ToUniversalTime(), duration.TotalMilliseconds, RefreshTelemetry.ModeTag(mode), attempts, trigger, error.SqlState, error.Message]);
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

    private static string Milliseconds(TimeSpan value) =>
        value <= TimeSpan.Zero ? "0" : Math.Max(1, (long)Math.Ceiling(value.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms";
}
