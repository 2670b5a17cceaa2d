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
    error_message text
);

CREATE INDEX IF NOT EXISTS refresh_history_started_at_idx ON "matview_refresh".refresh_history (started_at);
CREATE INDEX IF NOT EXISTS refresh_history_target_idx ON "matview_refresh".refresh_history (target, scope, started_at);

-- Starts a refresh transaction: sets its lock and statement timeouts, takes the target's refresh lock for the
-- rest of the transaction, and notes when the refresh proper starts (after any wait for the lock).
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
END
$$;

-- Ends a successful refresh in the same transaction: one history row, and the target's log row upserted.
-- A function rather than a plain statement so that PostgreSQL caches the plans of these statements per session.
CREATE OR REPLACE FUNCTION "matview_refresh".finish_refresh(
    p_target text, p_scope text, p_mode text, p_attempts integer, p_trigger text, p_count_rows_of regclass)
RETURNS TABLE (refreshed_at timestamptz, duration_ms double precision, row_count bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_started timestamptz := current_setting('matview_refresh.started_at')::timestamptz;
    v_finished timestamptz := clock_timestamp();
    v_duration double precision := extract(epoch FROM v_finished - v_started) * 1000;
    v_rows bigint;
BEGIN
    IF p_count_rows_of IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', p_count_rows_of) INTO v_rows;
    END IF;

    INSERT INTO "matview_refresh".refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger)
    VALUES (p_target, p_scope, v_started, v_duration, true, p_mode, p_attempts, p_trigger);

    INSERT INTO "matview_refresh".refresh_log AS l
        (target, scope, last_refreshed_at, duration_ms, mode, row_count, last_attempt_at, last_error, last_error_state)
    VALUES (p_target, p_scope, v_finished, v_duration, p_mode, v_rows, v_finished, NULL, NULL)
    ON CONFLICT (target, scope) DO UPDATE SET
        last_refreshed_at = EXCLUDED.last_refreshed_at, duration_ms = EXCLUDED.duration_ms, mode = EXCLUDED.mode,
        row_count = EXCLUDED.row_count, last_attempt_at = EXCLUDED.last_attempt_at, last_error = NULL, last_error_state = NULL;

    RETURN QUERY SELECT v_finished, v_duration, v_rows;
END
$$;

COMMIT;
