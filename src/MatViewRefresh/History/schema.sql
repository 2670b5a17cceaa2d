-- MatViewRefresh refresh log schema. Idempotent: safe to run any number of times, from any number of instances.
-- The library runs this script on first use (AutoCreateSchema); run it yourself to create the schema ahead of time.
-- To use another schema, replace "matview_refresh" everywhere (the library does this for MatViewRefresh:Schema).
BEGIN;
-- Serialize concurrent installs (CREATE ... IF NOT EXISTS can race).
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
ALTER TABLE "matview_refresh".refresh_log ADD COLUMN IF NOT EXISTS data_as_of timestamptz;
ALTER TABLE "matview_refresh".refresh_history ADD COLUMN IF NOT EXISTS data_as_of timestamptz;

CREATE INDEX IF NOT EXISTS refresh_history_started_at_idx ON "matview_refresh".refresh_history (started_at);
CREATE INDEX IF NOT EXISTS refresh_history_target_idx ON "matview_refresh".refresh_history (target, scope, started_at);

-- Scheduled refreshes: one row per (schedule, tick) that an instance claimed. Every instance of the app computes the
-- same nominal ticks; the first INSERT ... ON CONFLICT DO NOTHING wins and runs the tick, the others skip it.
CREATE TABLE IF NOT EXISTS "matview_refresh".schedule_ticks (
    schedule   text        NOT NULL,
    tick       timestamptz NOT NULL,
    claimed_by text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);

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

-- Deletes history older than the retention (run by the library in its own short transaction, at most hourly).
CREATE OR REPLACE FUNCTION "matview_refresh".prune_history(p_older_than interval)
RETURNS bigint
LANGUAGE sql
AS $$
    WITH d AS (DELETE FROM "matview_refresh".refresh_history WHERE started_at < clock_timestamp() - p_older_than RETURNING 1)
    SELECT count(*) FROM d
$$;

COMMIT;
