namespace MatViewRefresh;

/// <summary>The SQL of the durable worker, for one log schema (identifiers quoted once here; every value a parameter).</summary>
internal sealed class DurableSql
{
    /// <summary>
    /// The first key of the worker's claim lock, <c>pg_try_advisory_xact_lock(int, int)</c> ("MVRQ"): a two-key advisory lock never
    /// collides with the refresher's one-key (bigint) locks. The second key is <c>hashtext(target)</c>: two targets with equal
    /// hashes only take turns.
    /// </summary>
    public const int ClaimLockClass = 0x4D565251;

    public DurableSql(string schema)
    {
        var s = SqlIdentifier.Quote(schema);
        Due = $"""
            WITH k AS (
                SELECT r.target, min(r.requested_at) AS oldest, max(r.requested_at) AS newest
                  FROM {s}.refresh_requests r
                 WHERE r.target <> ALL($1)
                 GROUP BY r.target),
            d AS (
                SELECT k.target, greatest(least(k.newest + $2, k.oldest + $3), q.last_run_at + $4, q.retry_at) AS due
                  FROM k LEFT JOIN {s}.refresh_queue_state q ON q.target = k.target)
            SELECT d.target, extract(epoch FROM d.due - clock_timestamp())::float8 * 1000
              FROM d ORDER BY d.due LIMIT $5
            """;
        Lock = $"""
            SELECT pg_try_advisory_xact_lock({ClaimLockClass}, hashtext($1)), clock_timestamp(),
                   (SELECT q.failures FROM {s}.refresh_queue_state q WHERE q.target = $1),
                   set_config('idle_in_transaction_session_timeout', '0', true)
            """;
        Claim = $"""
            WITH d AS (DELETE FROM {s}.refresh_requests r WHERE r.target = $1 AND (SELECT pg_try_advisory_xact_lock({ClaimLockClass}, hashtext($1)))
                       RETURNING r.first_day, r.last_day, r.full_refresh, r.requested_at)
            , e AS (SELECT d.*, d.first_day IS NOT NULL AND NOT (isfinite(d.first_day) AND isfinite(d.last_day)
                                  AND d.first_day >= DATE '0001-01-01' AND d.last_day < DATE '9999-12-31') AS beyond FROM d)
            SELECT CASE WHEN beyond THEN NULL ELSE first_day END, CASE WHEN beyond THEN NULL ELSE last_day END,
                   bool_or(full_refresh OR beyond), count(*), min(requested_at)
              FROM e GROUP BY 1, 2
            """;
        Lag = $"""
            UPDATE {s}.refresh_history SET lag_ms = greatest(0, extract(epoch FROM $5::timestamptz - $6::timestamptz)::float8 * 1000)
             WHERE target = $1 AND scope = $2 AND success AND data_as_of = $3 AND started_at >= $4::timestamptz - interval '1 minute' AND started_at <= $5
            """;
        Succeeded = $"""
            INSERT INTO {s}.refresh_queue_state AS q (target, last_run_at, failures, retry_at, last_error) VALUES ($1, $2, 0, NULL, NULL)
            ON CONFLICT (target) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, failures = 0, retry_at = NULL, last_error = NULL
            """;
        SetBack = $"""
            INSERT INTO {s}.refresh_queue_state AS q (target, failures, retry_at, last_error) VALUES ($1, $2, clock_timestamp() + $3, $4)
            ON CONFLICT (target) DO UPDATE SET failures = EXCLUDED.failures, retry_at = EXCLUDED.retry_at, last_error = EXCLUDED.last_error
            """;
        Prune = $"""
            DELETE FROM {s}.refresh_queue_state q
             WHERE q.failures = 0 AND (q.retry_at IS NULL OR q.retry_at < clock_timestamp())
               AND (q.last_run_at IS NULL OR q.last_run_at < clock_timestamp() - $1)
               AND NOT EXISTS (SELECT 1 FROM {s}.refresh_requests r WHERE r.target = q.target)
            """;
    }

    /// <summary>Targets with pending requests, earliest due first, with how long until each is due (negative: overdue). $1 targets to leave out, $2 settle delay, $3 MaxWait, $4 MinInterval, $5 limit.</summary>
    public string Due { get; }

    /// <summary>
    /// Takes the target's claim lock for the transaction; the database clock; the target's consecutive failures. Also turns
    /// off <c>idle_in_transaction_session_timeout</c> for the transaction: the claim waits idle while the refresh runs on
    /// another connection, and a server or pooler ending it would lose the deletes of a refresh that committed (the same
    /// requests would run again, forever).
    /// </summary>
    public string Lock { get; }

    /// <summary>
    /// Deletes (uncommitted until the run settles) every request of the target visible now, grouped by days: what the run covers.
    /// Sent in the same round trip as <see cref="Lock"/> and the savepoint, so it deletes only when this transaction holds the
    /// claim lock (taking it again is re-entrant; evaluated once, as an init plan): when <see cref="Lock"/> found the target
    /// busy, nothing is deleted (or, if the lock was freed in between, the worker rolls the whole transaction back).
    /// Days no refresh can take (infinite, BC, or reaching 9999-12-31 — a common "open-ended" value) ask for a full refresh:
    /// one such request must not make every later run of its target fail.
    /// </summary>
    public string Claim { get; }

    /// <summary>Records the run's change-to-visible lag in its history row.</summary>
    public string Lag { get; }

    /// <summary>The run succeeded: when it started (MinInterval), and no failures.</summary>
    public string Succeeded { get; }

    /// <summary>The run failed or found the target busy: consecutive failures and when to try again.</summary>
    public string SetBack { get; }

    /// <summary>Forgets the state of targets with nothing pending, nothing to wait out and no recent run.</summary>
    public string Prune { get; }
}
