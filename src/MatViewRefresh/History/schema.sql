-- MatViewRefresh refresh log schema. Idempotent: safe to run any number of times, from any number of instances.
-- The library runs this script on first use (AutoCreateSchema); run it yourself to create the schema ahead of time.
-- To use another schema, replace "matview_refresh" everywhere (the library does this for MatViewRefresh:Schema).
BEGIN;
-- Serialize concurrent installs (CREATE ... IF NOT EXISTS can race).
-- ALTER TABLE ... ADD COLUMN IF NOT EXISTS and CREATE INDEX IF NOT EXISTS lock their table before finding there is nothing
-- to do, so each runs only when the catalog says it is missing: a rerun of this script (every new app instance runs it) takes
-- no table lock, and never queues behind (nor in front of) a durable worker's claim held across a refresh.
SELECT pg_advisory_xact_lock(7208416153497468925);

CREATE SCHEMA IF NOT EXISTS "matview_refresh";

-- One row per target (and scope): the last refresh and the last attempt.
CREATE TABLE IF NOT EXISTS "matview_refresh".refresh_log (
    target            text             NOT NULL,
    scope             text             NOT NULL DEFAULT '',
    last_refreshed_at timestamptz,
    duration_ms       double precision,
    mode              text,
    row_count         bigint,
    last_attempt_at   timestamptz      NOT NULL,
    last_error        text,
    last_error_state  text,
    PRIMARY KEY (target, scope)
);

-- One row per run (a run may take several attempts).
CREATE TABLE IF NOT EXISTS "matview_refresh".refresh_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target        text             NOT NULL,
    scope         text             NOT NULL DEFAULT '',
    started_at    timestamptz      NOT NULL,
    duration_ms   double precision NOT NULL,
    success       boolean          NOT NULL,
    mode          text,
    attempts      integer          NOT NULL,
    trigger       text             NOT NULL,
    error_state   text,
    error_message text,
    data_as_of    timestamptz
);

-- Added after 0.1: what the refresh reflects. Data committed before data_as_of is in the refreshed view.
DO $ddl$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($n$"matview_refresh".refresh_log$n$) AND attname = 'data_as_of' AND NOT attisdropped) THEN
        ALTER TABLE "matview_refresh".refresh_log ADD COLUMN IF NOT EXISTS data_as_of timestamptz;
    END IF;
END $ddl$;
DO $ddl$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($n$"matview_refresh".refresh_history$n$) AND attname = 'data_as_of' AND NOT attisdropped) THEN
        ALTER TABLE "matview_refresh".refresh_history ADD COLUMN IF NOT EXISTS data_as_of timestamptz;
    END IF;
END $ddl$;

DO $ddl$ BEGIN
    IF to_regclass($n$"matview_refresh".refresh_history_started_at_idx$n$) IS NULL THEN
        CREATE INDEX IF NOT EXISTS refresh_history_started_at_idx ON "matview_refresh".refresh_history (started_at);
    END IF;
END $ddl$;
DO $ddl$ BEGIN
    IF to_regclass($n$"matview_refresh".refresh_history_target_idx$n$) IS NULL THEN
        CREATE INDEX IF NOT EXISTS refresh_history_target_idx ON "matview_refresh".refresh_history (target, scope, started_at);
    END IF;
END $ddl$;

-- Scheduled refreshes: one row per (schedule, tick) that an instance claimed. Every instance of the app computes the
-- same nominal ticks; the first INSERT ... ON CONFLICT DO NOTHING wins and runs the tick, the others skip it.
CREATE TABLE IF NOT EXISTS "matview_refresh".schedule_ticks (
    schedule   text        NOT NULL,
    tick       timestamptz NOT NULL,
    claimed_by text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);

-- The run of each schedule in progress, across instances: which run holds it and until when its lease lasts (so a
-- crashed instance blocks the schedule no longer than its RunLease). Taken with a conditional upsert, cleared at the end.
CREATE TABLE IF NOT EXISTS "matview_refresh".schedule_runs (
    schedule      text        PRIMARY KEY,
    running_by    text,
    running_until timestamptz,
    started_at    timestamptz
);

-- Durable refresh requests: append-only, one row per request, written in the requester's own transaction (committed
-- with its data or not at all) by IRefreshQueue.EnqueueAsync or by the trigger on a watched base table. Workers in
-- every app instance claim a target's rows, run one refresh for all of them, and delete exactly the rows they covered.
--   target       the target's log name (RefreshTarget.ToString(), schema-qualified, as in refresh_log.target)
--   first_day,   for window targets: the local days [first_day, last_day] (inclusive) whose rows changed;
--   last_day     both NULL = refresh the target as configured (a plain refresh, or its usual window)
--   full_refresh recompute everything (a TRUNCATE of a base table, or asked for)
--   requested_at when the change was requested: the start of change-to-visible lag
--   source       'app' (EnqueueAsync) or 'trigger' (a watched base table)
-- No key: every enqueued row is an insertion into each index on the writer's path (tens of thousands a second under load), and
-- rows are read only by target. (Tables created by earlier scripts have an id key; nothing reads it.)
CREATE TABLE IF NOT EXISTS "matview_refresh".refresh_requests (
    target       text        NOT NULL,
    first_day    date,
    last_day     date,
    full_refresh boolean     NOT NULL DEFAULT false,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    source       text        NOT NULL DEFAULT 'app',
    CHECK ((first_day IS NULL) = (last_day IS NULL) AND (first_day IS NULL OR first_day <= last_day))
);
DO $ddl$ BEGIN
    -- By target and age: a worker reads a target's oldest and newest request from it (with an index on target alone, the
    -- planner answers min(requested_at) for one target by walking the requested_at index instead).
    IF to_regclass($n$"matview_refresh".refresh_requests_target_at_idx$n$) IS NULL THEN
        CREATE INDEX IF NOT EXISTS refresh_requests_target_at_idx ON "matview_refresh".refresh_requests (target, requested_at);
    END IF;
    -- (Earlier scripts made refresh_requests_target_idx, on (target, id), and the id key; they are left as they are: dropping
    -- them would lock the table against every writer. Drop them by hand once every instance runs this version.)
END $ddl$;

-- The durable workers' state per target (written only by workers, under the target's claim lock; writers never touch it):
-- when its last run started (MinInterval across instances), consecutive failures and when to try again (backoff of a poison
-- target). Rows of idle targets are pruned.
CREATE TABLE IF NOT EXISTS "matview_refresh".refresh_queue_state (
    target      text        PRIMARY KEY,
    last_run_at timestamptz,
    failures    integer     NOT NULL DEFAULT 0,
    retry_at    timestamptz,
    last_error  text
);

-- The durable workers seen lately (shares, DurableRefreshOptions.ShareTargets): each notes itself every few reads of the
-- queue and reads only its share of the due targets (a hash of the target modulo the workers seen, by id), then what is long
-- overdue. Ids are random per worker; rows of workers gone for an hour are removed, a stopping worker removes its own.
CREATE TABLE IF NOT EXISTS "matview_refresh".refresh_workers (
    worker  uuid        PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

-- Added for durable requests: a queued run's change-to-visible lag, from its oldest covered request to the refresh.
DO $ddl$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($n$"matview_refresh".refresh_history$n$) AND attname = 'lag_ms' AND NOT attisdropped) THEN
        ALTER TABLE "matview_refresh".refresh_history ADD COLUMN IF NOT EXISTS lag_ms double precision;
    END IF;
END $ddl$;

-- 0.1's finish_refresh had six parameters; the seven-parameter one below replaces it (both would make calls ambiguous).
DROP FUNCTION IF EXISTS "matview_refresh".finish_refresh(text, text, text, integer, text, regclass);

-- What the next statement of this transaction will see: data committed before the returned instant is visible to it.
-- Under READ COMMITTED each statement takes a new snapshot when it starts, so it is now; under REPEATABLE READ and
-- SERIALIZABLE the snapshot was taken at the transaction's first statement, so it is the transaction's start.
CREATE OR REPLACE FUNCTION "matview_refresh".data_as_of_now()
RETURNS timestamptz
LANGUAGE sql
VOLATILE
AS $$
    SELECT CASE WHEN current_setting('transaction_isolation') = 'read committed' THEN clock_timestamp() ELSE transaction_timestamp() END
$$;

-- Starts a refresh transaction: sets its lock and statement timeouts, takes the target's refresh lock for the
-- rest of the transaction, and notes when the refresh proper starts (after any wait for the lock) and what the
-- next statement will see ("data as of", see data_as_of_now()).
-- p_wait = false: a busy target fails at once with SQLSTATE MVR01 instead of waiting (bounded by lock_timeout).
CREATE OR REPLACE FUNCTION "matview_refresh".begin_refresh(p_key bigint, p_wait boolean, p_lock_timeout text, p_statement_timeout text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM set_config('statement_timeout', p_statement_timeout, true);
    IF NOT pg_try_advisory_xact_lock(p_key) THEN
        IF NOT p_wait THEN
            RAISE EXCEPTION 'refresh target is busy (advisory lock % is held)', p_key USING ERRCODE = 'MVR01';
        END IF;
        PERFORM pg_advisory_xact_lock(p_key);
    END IF;
    PERFORM set_config('matview_refresh.started_at', clock_timestamp()::text, true);
    PERFORM set_config('matview_refresh.data_as_of', "matview_refresh".data_as_of_now()::text, true);
END
$$;

-- Ends a successful refresh in the same transaction: one history row, and the target's log row upserted.
-- p_data_as_of: the instant before the refresh statement's snapshot (NULL: as noted by begin_refresh).
-- A function rather than a plain statement so that PostgreSQL caches the plans of these statements per session.
CREATE OR REPLACE FUNCTION "matview_refresh".finish_refresh(
    p_target text, p_scope text, p_mode text, p_attempts integer, p_trigger text, p_count_rows_of regclass,
    p_data_as_of timestamptz DEFAULT NULL)
RETURNS TABLE (data_as_of timestamptz, refreshed_at timestamptz, duration_ms double precision, row_count bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_started timestamptz := current_setting('matview_refresh.started_at')::timestamptz;
    v_as_of timestamptz := coalesce(p_data_as_of, current_setting('matview_refresh.data_as_of')::timestamptz);
    v_finished timestamptz := clock_timestamp();
    v_duration double precision := extract(epoch FROM v_finished - v_started) * 1000;
    v_rows bigint;
BEGIN
    IF p_count_rows_of IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', p_count_rows_of) INTO v_rows;
    END IF;

    INSERT INTO "matview_refresh".refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger, data_as_of)
    VALUES (p_target, p_scope, v_started, v_duration, true, p_mode, p_attempts, p_trigger, v_as_of);

    INSERT INTO "matview_refresh".refresh_log AS l
        (target, scope, last_refreshed_at, data_as_of, duration_ms, mode, row_count, last_attempt_at, last_error, last_error_state)
    VALUES (p_target, p_scope, v_finished, v_as_of, v_duration, p_mode, v_rows, v_finished, NULL, NULL)
    ON CONFLICT (target, scope) DO UPDATE SET
        last_refreshed_at = EXCLUDED.last_refreshed_at, data_as_of = EXCLUDED.data_as_of, duration_ms = EXCLUDED.duration_ms,
        mode = EXCLUDED.mode, row_count = EXCLUDED.row_count, last_attempt_at = EXCLUDED.last_attempt_at,
        last_error = NULL, last_error_state = NULL;

    RETURN QUERY SELECT v_as_of, v_finished, v_duration, v_rows;
END
$$;

-- Refreshes one materialized view in the caller's transaction: timeouts and lock (begin_refresh), the mode decided
-- from the catalog as it is now, REFRESH, then the log and history rows (finish_refresh). One statement, one round trip.
-- p_mode: 'full', 'concurrent', or 'auto' (CONCURRENTLY when the view is populated and has an index that matview.c
-- accepts: unique, immediate, valid, btree, no WHERE, plain columns only; otherwise full).
-- A view that does not exist raises SQLSTATE MVR02.
CREATE OR REPLACE FUNCTION "matview_refresh".refresh_view(
    p_schema text, p_name text, p_mode text, p_key bigint, p_wait boolean, p_lock_timeout text, p_statement_timeout text,
    p_target text, p_attempts integer, p_trigger text, p_count_rows boolean)
RETURNS TABLE (mode text, mode_reason text, data_as_of timestamptz, refreshed_at timestamptz, duration_ms double precision, row_count bigint)
LANGUAGE plpgsql
AS $$
-- Self-contained rather than calling begin_refresh/finish_refresh: this is the hot path, and nested calls, timestamps
-- passed through settings as text and RETURN QUERY cost more than the statements themselves.
DECLARE
    v_oid oid;
    v_populated boolean;
    v_mode text := p_mode;
    v_reason text;
    v_started timestamptz;
    v_as_of timestamptz;
    v_finished timestamptz;
    v_duration double precision;
    v_rows bigint;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM set_config('statement_timeout', p_statement_timeout, true);
    IF NOT pg_try_advisory_xact_lock(p_key) THEN
        IF NOT p_wait THEN
            RAISE EXCEPTION 'refresh target is busy (advisory lock % is held)', p_key USING ERRCODE = 'MVR01';
        END IF;
        PERFORM pg_advisory_xact_lock(p_key);
    END IF;
    v_started := clock_timestamp();

    SELECT c.oid, c.relispopulated INTO v_oid, v_populated
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = p_schema AND c.relname = p_name AND c.relkind = 'm';
    IF v_oid IS NULL THEN
        RAISE EXCEPTION 'materialized view %.% does not exist', quote_ident(p_schema), quote_ident(p_name) USING ERRCODE = 'MVR02';
    END IF;

    IF p_mode = 'full' THEN
        v_reason := 'full refresh requested';
    ELSIF p_mode = 'concurrent' THEN
        v_reason := 'concurrent refresh requested';
    ELSIF NOT v_populated THEN
        v_mode := 'full';
        v_reason := 'auto chose full: view is not populated';
    ELSIF NOT EXISTS (SELECT 1
                        FROM pg_index i
                        JOIN pg_class ic ON ic.oid = i.indexrelid
                        JOIN pg_am am ON am.oid = ic.relam
                       WHERE i.indrelid = v_oid AND i.indisunique AND i.indimmediate AND i.indisvalid
                         AND am.amname = 'btree' AND i.indpred IS NULL AND i.indexprs IS NULL
                         AND i.indnatts > 0 AND 0 <> ALL (i.indkey::int2[])) THEN
        v_mode := 'full';
        v_reason := 'auto chose full: no unique index without WHERE on plain columns';
    ELSE
        v_mode := 'concurrent';
        v_reason := 'auto chose concurrent: view is populated and has a usable unique index';
    END IF;

    -- As data_as_of_now(), inline.
    v_as_of := CASE WHEN current_setting('transaction_isolation') = 'read committed' THEN clock_timestamp() ELSE transaction_timestamp() END;
    EXECUTE format(CASE WHEN v_mode = 'concurrent' THEN 'REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I' ELSE 'REFRESH MATERIALIZED VIEW %I.%I' END,
                   p_schema, p_name);
    IF p_count_rows THEN
        EXECUTE format('SELECT count(*) FROM %I.%I', p_schema, p_name) INTO v_rows;
    END IF;

    v_finished := clock_timestamp();
    v_duration := extract(epoch FROM v_finished - v_started) * 1000;

    INSERT INTO "matview_refresh".refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger, data_as_of)
    VALUES (p_target, '', v_started, v_duration, true, v_mode, p_attempts, p_trigger, v_as_of);

    INSERT INTO "matview_refresh".refresh_log AS l
        (target, scope, last_refreshed_at, data_as_of, duration_ms, mode, row_count, last_attempt_at, last_error, last_error_state)
    VALUES (p_target, '', v_finished, v_as_of, v_duration, v_mode, v_rows, v_finished, NULL, NULL)
    ON CONFLICT (target, scope) DO UPDATE SET
        last_refreshed_at = EXCLUDED.last_refreshed_at, data_as_of = EXCLUDED.data_as_of, duration_ms = EXCLUDED.duration_ms,
        mode = EXCLUDED.mode, row_count = EXCLUDED.row_count, last_attempt_at = EXCLUDED.last_attempt_at,
        last_error = NULL, last_error_state = NULL;

    mode := v_mode;
    mode_reason := v_reason;
    data_as_of := v_as_of;
    refreshed_at := v_finished;
    duration_ms := v_duration;
    row_count := v_rows;
    RETURN NEXT;
END
$$;

-- An age as people read it in a refresh reason, in whole minutes: "12 min", "26 h", "1 h 59 min".
CREATE OR REPLACE FUNCTION "matview_refresh".format_age(p_age interval)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE WHEN m < 60 THEN m || ' min' WHEN m % 60 = 0 THEN m / 60 || ' h' ELSE m / 60 || ' h ' || m % 60 || ' min' END
    FROM (SELECT floor(extract(epoch FROM p_age) / 60)::bigint AS m) a
$$;

-- The type of a window target's date column: date, timestamp or timestamptz; any other type, or no such column, is an
-- error naming the column and the table (for refresh_window and refresh_window_days).
CREATE OR REPLACE FUNCTION "matview_refresh".window_column_type(p_table text, p_column text)
RETURNS regtype
LANGUAGE plpgsql
AS $$
DECLARE
    v_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO v_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = p_table::regclass AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of the window target % does not exist', p_column, p_table USING ERRCODE = '42703';
    ELSIF v_type NOT IN ('date'::regtype, 'timestamptz'::regtype, 'timestamp'::regtype) THEN
        RAISE EXCEPTION 'column "%" of the window target % is %, not date, timestamptz or timestamp', p_column, p_table, v_type
            USING ERRCODE = '42804';
    END IF;
    RETURN v_type;
END
$$;

-- Refreshes a mart table by date window in the caller's transaction: timeouts and lock (begin_refresh), the strategy
-- ('incremental', 'full', or 'smart': full when the history holds no successful full refresh within p_full_after), the
-- window's rows deleted and the query's rows inserted, then the log and history rows (finish_refresh). One statement.
-- p_delete ($1, $2 = the window), p_delete_all, p_insert ($1, $2) and p_newest are built by the library with quoted
-- identifiers. The window is passed as local days and as instants; the date column's type decides which are bound.
CREATE OR REPLACE FUNCTION "matview_refresh".refresh_window(
    p_table text, p_column text, p_strategy text, p_full_after interval,
    p_from_day date, p_to_day date, p_from timestamptz, p_to timestamptz,
    p_delete text, p_delete_all text, p_insert text, p_newest text,
    p_key bigint, p_wait boolean, p_lock_timeout text, p_statement_timeout text,
    p_target text, p_scope text, p_attempts integer, p_trigger text)
RETURNS TABLE (strategy text, mode_reason text, data_as_of timestamptz, refreshed_at timestamptz, duration_ms double precision,
               rows_deleted bigint, rows_inserted bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_type regtype;
    v_strategy text := p_strategy;
    v_reason text;
    v_last timestamptz;
    v_newest timestamptz;
    v_now timestamptz;
    v_deleted bigint;
    v_inserted bigint;
BEGIN
    PERFORM "matview_refresh".begin_refresh(p_key, p_wait, p_lock_timeout, p_statement_timeout);
    v_type := "matview_refresh".window_column_type(p_table, p_column);

    IF p_strategy = 'smart' THEN
        SELECT max(h.started_at) INTO v_last FROM "matview_refresh".refresh_history h
        WHERE h.target = p_target AND h.scope = p_scope AND h.success AND h.mode = 'full';
        v_now := clock_timestamp();
        IF v_last IS NULL THEN
            v_strategy := 'full';
            v_reason := 'smart chose full: no full refresh in the log';
        ELSIF v_now - v_last > p_full_after THEN
            v_strategy := 'full';
            v_reason := format('smart chose full: last full refresh %s ago > %s',
                "matview_refresh".format_age(v_now - v_last), "matview_refresh".format_age(p_full_after));
        ELSE
            v_strategy := 'incremental';
            v_reason := format('smart chose incremental: last full refresh %s ago ≤ %s',
                "matview_refresh".format_age(v_now - v_last), "matview_refresh".format_age(p_full_after));
        END IF;
        EXECUTE p_newest INTO v_newest;
        v_reason := v_reason || CASE WHEN v_newest IS NULL THEN '; the table is empty'
            ELSE format('; newest data %s old', "matview_refresh".format_age(v_now - v_newest)) END;
    ELSE
        v_reason := p_strategy || ' requested';
    END IF;

    IF v_strategy = 'full' THEN
        EXECUTE p_delete_all;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        IF v_type = 'date'::regtype THEN
            EXECUTE p_insert USING '-infinity'::date, 'infinity'::date;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
        ELSIF v_type = 'timestamp'::regtype THEN
            EXECUTE p_insert USING '-infinity'::timestamp, 'infinity'::timestamp;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
        ELSE
            EXECUTE p_insert USING '-infinity'::timestamptz, 'infinity'::timestamptz;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
        END IF;
    ELSIF v_type = 'date'::regtype THEN
        EXECUTE p_delete USING p_from_day, p_to_day;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        EXECUTE p_insert USING p_from_day, p_to_day;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
    ELSIF v_type = 'timestamp'::regtype THEN
        EXECUTE p_delete USING p_from_day::timestamp, p_to_day::timestamp;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        EXECUTE p_insert USING p_from_day::timestamp, p_to_day::timestamp;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
    ELSE
        EXECUTE p_delete USING p_from, p_to;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        EXECUTE p_insert USING p_from, p_to;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
    END IF;

    RETURN QUERY SELECT v_strategy, v_reason, f.data_as_of, f.refreshed_at, f.duration_ms, v_deleted, v_inserted
    FROM "matview_refresh".finish_refresh(p_target, p_scope, v_strategy, p_attempts, p_trigger, NULL) f;
END
$$;

-- The advisory lock key of a target, exactly as the library computes it (RefreshSql.LockKey): SHA-256 of the UTF-8 bytes of
-- 'matview_refresh' NUL schema NUL name NUL scope, the first 8 bytes read big-endian as a signed 64-bit integer.
CREATE OR REPLACE FUNCTION "matview_refresh".lock_key(p_schema text, p_name text, p_scope text)
RETURNS bigint
LANGUAGE sql
IMMUTABLE STRICT
AS $$
    SELECT ('x' || encode(substring(sha256(
        convert_to('matview_refresh', 'UTF8') || '\x00'::bytea || convert_to(p_schema, 'UTF8') || '\x00'::bytea
        || convert_to(p_name, 'UTF8') || '\x00'::bytea || convert_to(p_scope, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;

-- Refreshes materialized views in the order given, each in its own transaction (COMMIT after each): the same lock, mode
-- decision, REFRESH, log and history rows as the library (refresh_view). A view that fails is recorded as the library records
-- a failure (history row with success = false, the log row's last_error), and the next view still runs.
-- Scheduled in pg_cron by IDatabaseRefreshScheduler; call it with CALL, outside an explicit transaction block.
-- p_views: one row per view, {schema, name, target as logged}, e.g. '{{public,daily,daily},{Sales,"Daily Totals","\"Sales\".\"Daily Totals\""}}'.
-- p_mode: 'auto', 'full' or 'concurrent'. p_trigger: recorded in the history. p_lock_timeout: lock_timeout of each refresh.
CREATE OR REPLACE PROCEDURE "matview_refresh".refresh(p_views text[], p_mode text, p_trigger text, p_lock_timeout text DEFAULT '30s')
LANGUAGE plpgsql
AS $$
DECLARE
    v_view text[];
    v_started timestamptz;
    v_state text;
    v_message text;
BEGIN
    IF p_mode IS NULL OR p_mode NOT IN ('auto', 'full', 'concurrent') THEN
        RAISE EXCEPTION 'refresh mode must be auto, full or concurrent, not %', coalesce(quote_literal(p_mode), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(p_views), 0) = 0 THEN
        RETURN;
    END IF;
    IF array_ndims(p_views) <> 2 OR array_length(p_views, 2) <> 3 THEN
        RAISE EXCEPTION 'p_views must have one row {schema, name, target} per view' USING ERRCODE = '22023';
    END IF;

    FOREACH v_view SLICE 1 IN ARRAY p_views LOOP
        v_started := clock_timestamp();
        BEGIN
            PERFORM "matview_refresh".refresh_view(v_view[1], v_view[2], p_mode, "matview_refresh".lock_key(v_view[1], v_view[2], ''),
                true, p_lock_timeout, '0', v_view[3], 1, p_trigger, false);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            INSERT INTO "matview_refresh".refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger, error_state, error_message)
            VALUES (v_view[3], '', v_started, extract(epoch FROM clock_timestamp() - v_started) * 1000, false, p_mode, 1, p_trigger, v_state, v_message);
            INSERT INTO "matview_refresh".refresh_log AS l (target, scope, last_attempt_at, last_error, last_error_state)
            VALUES (v_view[3], '', clock_timestamp(), v_message, v_state)
            ON CONFLICT (target, scope) DO UPDATE SET
                last_attempt_at = EXCLUDED.last_attempt_at, last_error = EXCLUDED.last_error, last_error_state = EXCLUDED.last_error_state;
        END;
        COMMIT;
    END LOOP;
END
$$;

-- Deletes history older than the retention (run by the library in its own short transaction, at most hourly).
CREATE OR REPLACE FUNCTION "matview_refresh".prune_history(p_older_than interval)
RETURNS bigint
LANGUAGE sql
AS $$
    WITH d AS (DELETE FROM "matview_refresh".refresh_history WHERE started_at < clock_timestamp() - p_older_than RETURNING 1)
    SELECT count(*) FROM d
$$;

COMMIT;
