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

-- Takes the refresh lock of a target for the rest of the transaction and notes when the refresh proper starts.
-- p_wait = false: a busy target fails at once with SQLSTATE MVR01 instead of waiting (bounded by lock_timeout).
CREATE OR REPLACE FUNCTION "matview_refresh".begin_refresh(p_key bigint, p_wait boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_key) THEN
        IF NOT p_wait THEN
            RAISE EXCEPTION 'refresh target is busy (advisory lock % is held)', p_key USING ERRCODE = 'MVR01';
        END IF;
        PERFORM pg_advisory_xact_lock(p_key);
    END IF;
    PERFORM set_config('matview_refresh.started_at', clock_timestamp()::text, true);
END
$$;

COMMIT;
