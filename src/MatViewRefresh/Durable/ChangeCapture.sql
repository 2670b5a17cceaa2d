-- MatViewRefresh change capture and changed-days refresh. Runs right after schema.sql, in its own transaction (the
-- library runs both on first use; run both yourself to create the schema ahead of time). Idempotent, like schema.sql.
-- To use another schema, replace "matview_refresh" everywhere (the library does this for MatViewRefresh:Schema).
BEGIN;
SELECT pg_advisory_xact_lock(7208416153497468925);

-- Refreshes exactly the given local days of a mart table kept by date window, in the caller's transaction: the lock and
-- timeouts (begin_refresh), then for each run of days [p_first_days[i], p_end_days[i]) (end exclusive, merged and sorted by the
-- library) its rows deleted and the query's rows inserted, then the log and history rows (finish_refresh) with p_mode (for
-- example 'incremental (3 days: 2026-03-01..03)'). The runs are passed as local days and as the instants of their local
-- midnights; the date column's type decides which are bound, as in refresh_window.
CREATE OR REPLACE FUNCTION "matview_refresh".refresh_window_days(
    p_table text, p_column text, p_first_days date[], p_end_days date[], p_firsts timestamptz[], p_ends timestamptz[],
    p_delete text, p_insert text, p_mode text, p_reason text,
    p_key bigint, p_wait boolean, p_lock_timeout text, p_statement_timeout text,
    p_target text, p_scope text, p_attempts integer, p_trigger text)
RETURNS TABLE (strategy text, mode_reason text, data_as_of timestamptz, refreshed_at timestamptz, duration_ms double precision,
               rows_deleted bigint, rows_inserted bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_type regtype;
    v_count bigint;
    v_deleted bigint := 0;
    v_inserted bigint := 0;
BEGIN
    IF coalesce(cardinality(p_first_days), 0) = 0 OR cardinality(p_first_days) <> cardinality(p_end_days)
       OR cardinality(p_first_days) <> cardinality(p_firsts) OR cardinality(p_first_days) <> cardinality(p_ends) THEN
        RAISE EXCEPTION 'refresh_window_days needs one first day, end day, first instant and end instant per run' USING ERRCODE = '22023';
    END IF;
    PERFORM "matview_refresh".begin_refresh(p_key, p_wait, p_lock_timeout, p_statement_timeout);
    SELECT a.atttypid::regtype INTO v_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = p_table::regclass AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of the window target % does not exist', p_column, p_table USING ERRCODE = '42703';
    ELSIF v_type NOT IN ('date'::regtype, 'timestamptz'::regtype, 'timestamp'::regtype) THEN
        RAISE EXCEPTION 'column "%" of the window target % is %, not date, timestamptz or timestamp', p_column, p_table, v_type
            USING ERRCODE = '42804';
    END IF;

    FOR i IN 1 .. cardinality(p_first_days) LOOP
        IF v_type = 'date'::regtype THEN
            EXECUTE p_delete USING p_first_days[i], p_end_days[i];
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_deleted := v_deleted + v_count;
            EXECUTE p_insert USING p_first_days[i], p_end_days[i];
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_inserted := v_inserted + v_count;
        ELSIF v_type = 'timestamp'::regtype THEN
            EXECUTE p_delete USING p_first_days[i]::timestamp, p_end_days[i]::timestamp;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_deleted := v_deleted + v_count;
            EXECUTE p_insert USING p_first_days[i]::timestamp, p_end_days[i]::timestamp;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_inserted := v_inserted + v_count;
        ELSE
            EXECUTE p_delete USING p_firsts[i], p_ends[i];
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_deleted := v_deleted + v_count;
            EXECUTE p_insert USING p_firsts[i], p_ends[i];
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_inserted := v_inserted + v_count;
        END IF;
    END LOOP;

    RETURN QUERY SELECT 'incremental'::text, p_reason, f.data_as_of, f.refreshed_at, f.duration_ms, v_deleted, v_inserted
    FROM "matview_refresh".finish_refresh(p_target, p_scope, p_mode, p_attempts, p_trigger, NULL) f;
END
$$;

-- Watched base tables (IRefreshWatcher): one row per (target, base table). The capture triggers on a table read the rows
-- of its table and request a refresh of each target in refresh_requests, in the writer's transaction.
--   target       the target's log name, as written to refresh_requests.target
--   table_oid    the watched base table (the triggers are looked up by it)
--   day_column   the table's column whose local days a statement changed (a window target's date column, when the table
--                has it as date, timestamp or timestamptz); NULL: requests carry no days
--   day_type     'date', 'timestamp' or 'timestamptz': how a value becomes a local day
--   time_zone    the IANA zone of a timestamptz day_column's local days
CREATE TABLE IF NOT EXISTS "matview_refresh".watches (
    target       text        NOT NULL,
    table_oid    oid         NOT NULL,
    table_schema text        NOT NULL,
    table_name   text        NOT NULL,
    day_column   text,
    day_type     text        CHECK (day_type IN ('date', 'timestamp', 'timestamptz')),
    time_zone    text,
    watched_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, table_oid),
    CHECK ((day_column IS NULL) = (day_type IS NULL))
);
CREATE INDEX IF NOT EXISTS watches_table_idx ON "matview_refresh".watches (table_oid);

-- The trigger function of every capture trigger (statement level, AFTER INSERT / UPDATE / DELETE with transition tables
-- named mvr_new / mvr_old, and AFTER TRUNCATE). For each target watching the table: TRUNCATE requests a full refresh; a
-- statement that changed no row requests nothing; with a day column, one request per contiguous run of the distinct local
-- days of the changed rows (old and new versions), so a statement touching disjoint days requests exactly those days;
-- without one, one request without days. Runs in the writer's transaction: a rolled-back write leaves no request.
-- SECURITY DEFINER (with a fixed search_path): writers need no privilege on this schema, only on their own tables.
CREATE OR REPLACE FUNCTION "matview_refresh".capture_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    v_rows text;
    v_day text;
    v_any boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO "matview_refresh".refresh_requests (target, full_refresh, source)
        SELECT DISTINCT target, true, 'trigger' FROM "matview_refresh".watches WHERE table_oid = TG_RELID;
        RETURN NULL;
    END IF;

    v_rows := CASE TG_OP WHEN 'INSERT' THEN 'SELECT * FROM mvr_new' WHEN 'DELETE' THEN 'SELECT * FROM mvr_old'
                         ELSE 'SELECT * FROM mvr_old UNION ALL SELECT * FROM mvr_new' END;
    FOR w IN SELECT target, day_column, day_type, time_zone FROM "matview_refresh".watches WHERE table_oid = TG_RELID ORDER BY target LOOP
        IF w.day_column IS NULL THEN
            IF v_any IS NULL THEN
                EXECUTE 'SELECT EXISTS (' || v_rows || ')' INTO v_any;
            END IF;
            IF v_any THEN
                INSERT INTO "matview_refresh".refresh_requests (target, source) VALUES (w.target, 'trigger');
            END IF;
        ELSE
            v_day := CASE w.day_type WHEN 'date' THEN format('r.%I', w.day_column)
                                     WHEN 'timestamp' THEN format('r.%I::date', w.day_column)
                                     ELSE format('(r.%I AT TIME ZONE %L)::date', w.day_column, w.time_zone) END;
            -- Gaps and islands: consecutive distinct days share day - row_number().
            EXECUTE format(
                'INSERT INTO "matview_refresh".refresh_requests (target, first_day, last_day, source) '
                'SELECT $1, min(d), max(d), ''trigger'' FROM ('
                '  SELECT d, d - (row_number() OVER (ORDER BY d))::integer AS island FROM ('
                '    SELECT DISTINCT %s AS d FROM (%s) r) days WHERE d IS NOT NULL AND isfinite(d)) runs '
                'GROUP BY island ORDER BY min(d)', v_day, v_rows) USING w.target;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

COMMIT;
