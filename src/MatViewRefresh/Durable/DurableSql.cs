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
        LogSchema = schema;
        var s = SqlIdentifier.Quote(schema);
        var pending = $"""
            k AS (
                SELECT r.target, min(r.requested_at) AS oldest, max(r.requested_at) AS newest
                  FROM {s}.refresh_requests r GROUP BY r.target),
            d AS (
                SELECT k.target, {DueAt("k", 1)} AS due
                  FROM k LEFT JOIN {s}.refresh_queue_state q ON q.target = k.target)
            """;
        DueAll = $"""
            WITH {pending},
            c AS (SELECT clock_timestamp() AS now)
            SELECT x.target, extract(epoch FROM x.due - clock_timestamp())::float8 * 1000
              FROM ((SELECT d.target, d.due, false AS coming FROM d, c WHERE d.due <= c.now ORDER BY d.due LIMIT $4)
                    UNION ALL
                    (SELECT d.target, d.due, true FROM d, c WHERE d.due > c.now ORDER BY d.due LIMIT $5)) x
             ORDER BY x.coming, x.due
            """;
        Due = $"""
            WITH seen AS (
                INSERT INTO {s}.refresh_workers AS w (worker, seen_at) SELECT $5, clock_timestamp() WHERE $8
                ON CONFLICT (worker) DO UPDATE SET seen_at = EXCLUDED.seen_at),
            gone AS (DELETE FROM {s}.refresh_workers w WHERE $8 AND w.worker <> $5 AND w.seen_at < clock_timestamp() - interval '1 hour'),
            me AS (
                SELECT count(*) FILTER (WHERE w.worker < $5) AS i, count(*) + 1 AS n
                  FROM {s}.refresh_workers w WHERE w.seen_at > clock_timestamp() - $6 AND w.worker <> $5),
            {pending},
            m AS (SELECT d.*, me.n = 1 OR (hashtext(d.target) & 2147483647) % me.n = me.i AS mine FROM d, me),
            c AS (SELECT clock_timestamp() AS now)
            SELECT x.target, extract(epoch FROM x.due - clock_timestamp())::float8 * 1000
              FROM ((SELECT m.target, m.due, m.mine, false AS coming FROM m, c WHERE m.due <= c.now AND (m.mine OR m.due < c.now - $7)
                      ORDER BY m.mine DESC, m.due LIMIT $4)
                    UNION ALL
                    (SELECT m.target, m.due, true, true FROM m, c WHERE m.due > c.now AND m.mine ORDER BY m.due LIMIT $9)) x
             ORDER BY x.coming, x.mine DESC, x.due
            """;
        Leave = $"DELETE FROM {s}.refresh_workers WHERE worker = $1";
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
        LockGroup = $"""
            SELECT clock_timestamp(), set_config('idle_in_transaction_session_timeout', '0', true),
                   set_config('matview_refresh.claimed', coalesce((
                       SELECT array_agg(t.target)::text FROM unnest($1::text[]) AS t(target) WHERE pg_try_advisory_xact_lock({ClaimLockClass}, hashtext(t.target))),
                       ARRAY[]::text[]::text), true)
            """;
        ClaimGroup = $"""
            WITH c AS MATERIALIZED (
                SELECT t.target, t.refresh_key, coalesce(t.target = ANY ((SELECT current_setting('matview_refresh.claimed', true)::text[])::text[]), false) AS locked
                  FROM unnest($1::text[], $5::bigint[]) AS t(target, refresh_key)),
            s0 AS MATERIALIZED (
                SELECT c.target, c.refresh_key, c.locked, coalesce(q.failures, 0) = 0 AS healthy,
                       c.locked AND coalesce({DueAt("p", 2)} <= clock_timestamp(), false) AS due
                  FROM c LEFT JOIN {s}.refresh_queue_state q ON q.target = c.target
                  LEFT JOIN LATERAL (SELECT min(r.requested_at) AS oldest, max(r.requested_at) AS newest
                                       FROM {s}.refresh_requests r WHERE c.locked AND r.target = c.target) p ON true),
            s AS MATERIALIZED (
                SELECT s0.target, s0.healthy, s0.due,
                       s0.locked AND CASE WHEN s0.due AND s0.healthy THEN pg_try_advisory_xact_lock(s0.refresh_key) ELSE true END AS locked
                  FROM s0),
            d AS (DELETE FROM {s}.refresh_requests r WHERE r.target = ANY (ARRAY(SELECT s.target FROM s WHERE s.locked AND s.due AND s.healthy))
                  RETURNING r.target, r.first_day, r.last_day, r.full_refresh, r.requested_at),
            e AS (SELECT d.*, d.first_day IS NOT NULL AND NOT (isfinite(d.first_day) AND isfinite(d.last_day)
                                  AND d.first_day >= DATE '0001-01-01' AND d.last_day < DATE '9999-12-31') AS beyond FROM d)
            SELECT s.target, s.healthy, s.due, s.locked,
                   CASE WHEN e.beyond THEN NULL ELSE e.first_day END, CASE WHEN e.beyond THEN NULL ELSE e.last_day END,
                   coalesce(bool_or(e.full_refresh OR e.beyond), false), count(e.target), min(e.requested_at)
              FROM s LEFT JOIN e ON e.target = s.target
             GROUP BY 1, 2, 3, 4, 5, 6
            """;
        GroupLag = $"""
            UPDATE {s}.refresh_history h SET lag_ms = greatest(0, extract(epoch FROM clock_timestamp() - u.oldest)::float8 * 1000)
              FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(target, scope, oldest, n)
             WHERE h.target = u.target AND h.scope = u.scope AND h.started_at >= $4 AND h.success
               AND h.xmin = (txid_current() % 4294967296)::text::xid
            RETURNING u.n, h.lag_ms
            """;
        NextDue = $"""
            SELECT k.target, extract(epoch FROM {DueAt("k", 2)} - clock_timestamp())::float8 * 1000
              FROM (SELECT r.target, min(r.requested_at) AS oldest, max(r.requested_at) AS newest
                      FROM {s}.refresh_requests r WHERE r.target = ANY ($1::text[]) GROUP BY r.target) k
              LEFT JOIN {s}.refresh_queue_state q ON q.target = k.target
            """;
        RecordMany = RefreshSql.RecordMany(schema);
        GroupSucceeded = $"""
            INSERT INTO {s}.refresh_queue_state AS q (target, last_run_at, failures, retry_at, last_error)
            SELECT t.target, $2, 0, NULL, NULL FROM unnest($1::text[]) AS t(target)
            ON CONFLICT (target) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, failures = 0, retry_at = NULL, last_error = NULL
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

    /// <summary>
    /// The debouncer's rule in SQL, one place for every statement that decides when a target is due: a settle delay after the
    /// newest request, no later than MaxWait after the oldest, not before MinInterval after the last run (<c>q</c>, its
    /// <c>refresh_queue_state</c> row), not before a failure's retry time. <paramref name="requests"/>: the alias with the
    /// target's <c>oldest</c> and <c>newest</c> request; settle delay, MaxWait and MinInterval are the parameters from
    /// <paramref name="first"/> on.
    /// </summary>
    private static string DueAt(string requests, int first) =>
        $"greatest(least({requests}.newest + ${first}, {requests}.oldest + ${first + 1}), q.last_run_at + ${first + 2}, q.retry_at)";

    /// <summary>The log schema's name (unquoted).</summary>
    public string LogSchema { get; }

    /// <summary>
    /// Targets with pending requests, earliest due first, with how long until each is due (negative: overdue; measured as the
    /// rows are made, near the statement's end: counted from the read's end, a due time is late by the rest of the read, never
    /// early); $1 settle delay, $2 MaxWait, $3 MinInterval; at most $4 due targets, then at most $5 not yet due (the
    /// read-ahead: a due list that fills its limit under load must not crowd out the targets coming due). One pass over the
    /// pending rows, aggregated by target: cheaper, under churn, than looking up each target's oldest and newest request by
    /// index (a queue's indexes are full of entries of rows deleted since the last vacuum). Every worker's list, without
    /// shares (<see cref="DurableRefreshOptions.ShareTargets"/> off, or no <c>refresh_workers</c> table to use).
    /// </summary>
    public string DueAll { get; }

    /// <summary>
    /// <see cref="DueAll"/>, for the reading worker's share ($5 its id): <c>hashtext(target)</c> modulo the workers seen within
    /// $6 (in <c>refresh_workers</c>), by their ids' order, plus any target of another share overdue by more than $7 (a share
    /// whose worker died or stalled is still run, later). Its own due targets come first, then the others', then its own not
    /// yet due ($4 and $9 the limits of due and not yet due targets). With $8 the worker notes that it is alive (and rows of workers gone for an hour are removed); the rank needs
    /// no row of its own, so it notes itself only every few reads. Shares are a preference, never a guarantee: claims are what
    /// keep two runs of a target apart.
    /// </summary>
    public string Due { get; }

    /// <summary>A stopping worker's row in <c>refresh_workers</c> removed ($1): its share goes to the others at their next read.</summary>
    public string Leave { get; }

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

    /// <summary>
    /// The first statement of a grouped run's claim: the database clock; <c>idle_in_transaction_session_timeout</c> off (see
    /// <see cref="Lock"/>); each of the targets $1's claim lock tried. The targets locked are kept in the transaction's setting
    /// <c>matview_refresh.claimed</c> for <see cref="ClaimGroup"/>, the next statement of the same round trip: its snapshot is
    /// taken after these locks, so what it reads of a locked target (its requests, its state) is what the last run of it left.
    /// </summary>
    public string LockGroup { get; }

    /// <summary>
    /// The second statement of a grouped run's claim, $1 the targets ($2 settle delay, $3 MaxWait, $4 MinInterval, as in
    /// <see cref="Due"/>; $5 their refresher locks, <see cref="RefreshSql.LockKey"/>): each target <see cref="LockGroup"/>
    /// locked is checked to be still due (the list may be a moment old, and another instance may have run it since); a due
    /// and healthy one (no consecutive failures) also has its refresher lock tried — a target a manual or scheduled refresh is
    /// running counts as not locked, passed over rather than failing the group —, and the requests of those locked both ways
    /// are deleted, uncommitted. One row per target and run of days: target, healthy, due, locked, first day, last day, any
    /// full, requests, oldest request. A locked target due but failing lately runs alone, after the group; one not due is
    /// left for a later read. (No refresher lock is taken for a target the group will not refresh.)
    /// </summary>
    public string ClaimGroup { get; }

    /// <summary>
    /// A grouped run's change-to-visible lags, just before its COMMIT: $1 targets, $2 scopes, $3 their oldest requests, $4 the
    /// claim's clock. Sets the lag of the history rows this transaction wrote; returns each one's position in $1 and its lag.
    /// </summary>
    public string GroupLag { get; }

    /// <summary>
    /// Just before a grouped run's COMMIT, for its targets $1 ($2 settle delay, $3 MaxWait, $4 MinInterval, as in <see cref="Due"/>):
    /// the requests that came during the run (the run's own deletes are already gone from its view), each target with any and
    /// how long until it is due, as <see cref="Due"/> lists it. The worker starts them when due without waiting for a read to
    /// find them: a read passes over targets running when it starts, so requests that came during a run were otherwise found
    /// only by the read after it — often overdue.
    /// </summary>
    public string NextDue { get; }

    /// <summary>A grouped run's function targets' log and history rows, with their lags (<see cref="RefreshSql.RecordMany"/>).</summary>
    public string RecordMany { get; }

    /// <summary>A grouped run succeeded: when it started ($2) for its targets ($1), for MinInterval.</summary>
    public string GroupSucceeded { get; }

    /// <summary>Records the run's change-to-visible lag in its history row.</summary>
    public string Lag { get; }

    /// <summary>The run succeeded: when it started (MinInterval), and no failures.</summary>
    public string Succeeded { get; }

    /// <summary>The run failed or found the target busy: consecutive failures and when to try again.</summary>
    public string SetBack { get; }

    /// <summary>Forgets the state of targets with nothing pending, nothing to wait out and no recent run.</summary>
    public string Prune { get; }
}
