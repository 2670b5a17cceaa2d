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
    v_type := "matview_refresh".window_column_type(p_table, p_column);

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
-- Created only when missing: CREATE INDEX IF NOT EXISTS locks the table even when the index is there.
DO $$
BEGIN
    IF to_regclass('"matview_refresh".watches_table_idx') IS NULL THEN
        CREATE INDEX watches_table_idx ON "matview_refresh".watches (table_oid);
    END IF;
END
$$;

-- (Re)installs the capture triggers of one table from its rows in watches, or removes them when it has none left; returns
-- whether triggers are installed. Generates the table's own trigger function, "capture_<table oid>", with static SQL (so
-- PostgreSQL plans its statements once per session, not at every statement as EXECUTE would), then four statement-level
-- triggers named p_prefix || '_capture_insert' / '_update' / '_delete' / '_truncate': AFTER INSERT (transition table
-- mvr_new), AFTER UPDATE (mvr_old and mvr_new), AFTER DELETE (mvr_old) — transition tables need single-event triggers —
-- and AFTER TRUNCATE. For each target watching the table the function writes refresh_requests rows in the writer's
-- transaction (a rolled-back write leaves none): TRUNCATE → full_refresh; a statement that changed no row → nothing;
-- with a day column, one row per contiguous run of the distinct local days of the changed rows (old and new versions),
-- so a statement touching disjoint days requests exactly those days; without one, one row without days.
-- The function is SECURITY DEFINER (with a fixed search_path): writers need no privilege on this schema.
-- Every identifier and value is quoted here by format() (%I, %L). p_schema: this schema's name, unquoted.
CREATE OR REPLACE FUNCTION "matview_refresh".install_capture(p_table oid, p_schema text, p_prefix text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_function text := format('%I.%I', p_schema, 'capture_' || p_table);
    v_requests text := format('%I.refresh_requests', p_schema);
    v_table text;
    v_all text;
    v_plain text;
    v_body text;
    v_rows text;
    v_day text;
    v_op text;
    g record;
BEGIN
    SELECT format('%I.%I', n.nspname, c.relname) INTO v_table
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    SELECT string_agg(format('(%L)', w.target), ', ' ORDER BY w.target) INTO v_all
      FROM "matview_refresh".watches w WHERE w.table_oid = p_table;

    IF v_all IS NULL OR v_table IS NULL THEN
        IF v_table IS NOT NULL THEN
            FOREACH v_op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
                IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p_table AND t.tgname = p_prefix || '_capture_' || v_op) THEN
                    EXECUTE format('DROP TRIGGER %I ON %s', p_prefix || '_capture_' || v_op, v_table);
                END IF;
            END LOOP;
        END IF;
        IF to_regprocedure(v_function || '()') IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION %s()', v_function);
        END IF;
        RETURN false;
    END IF;

    SELECT string_agg(format('(%L)', w.target), ', ' ORDER BY w.target) INTO v_plain
      FROM "matview_refresh".watches w WHERE w.table_oid = p_table AND w.day_column IS NULL;
    v_body := format(E'BEGIN\nIF TG_OP = %L THEN\n  INSERT INTO %s (target, full_refresh, source) SELECT v.t, true, %L FROM (VALUES %s) v(t) ORDER BY v.t;\n  RETURN NULL;\nEND IF;\n',
                     'TRUNCATE', v_requests, 'trigger', v_all);
    FOREACH v_op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
        v_rows := CASE v_op WHEN 'INSERT' THEN 'SELECT * FROM mvr_new' WHEN 'DELETE' THEN 'SELECT * FROM mvr_old'
                            ELSE 'SELECT * FROM mvr_old UNION ALL SELECT * FROM mvr_new' END;
        v_body := v_body || format(E'IF TG_OP = %L THEN\n', v_op);
        IF v_plain IS NOT NULL THEN
            v_body := v_body || format(E'  IF EXISTS (%s) THEN\n    INSERT INTO %s (target, source) SELECT v.t, %L FROM (VALUES %s) v(t) ORDER BY v.t;\n  END IF;\n',
                                       v_rows, v_requests, 'trigger', v_plain);
        END IF;
        FOR g IN SELECT w.day_column, w.day_type, w.time_zone, string_agg(format('(%L)', w.target), ', ' ORDER BY w.target) AS targets
                   FROM "matview_refresh".watches w WHERE w.table_oid = p_table AND w.day_column IS NOT NULL
                  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LOOP
            v_day := CASE g.day_type WHEN 'date' THEN format('r.%I', g.day_column)
                                     WHEN 'timestamp' THEN format('r.%I::date', g.day_column)
                                     ELSE format('(r.%I AT TIME ZONE %L)::date', g.day_column, g.time_zone) END;
            -- Gaps and islands: consecutive distinct days share day - row_number(). Guarded by the column's presence and
            -- type, read when the statement fires: a renamed, dropped or retyped day column (which PostgreSQL does not
            -- record as a dependency of this function) must not make the writer's statement fail; it requests a full
            -- refresh instead (no subtransaction: the unguarded statement is never planned).
            v_body := v_body || format(
                '  IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID AND a.attname = %L'
                ' AND a.atttypid = %L::pg_catalog.regtype AND a.attnum > 0 AND NOT a.attisdropped) THEN' || chr(10) ||
                '  INSERT INTO %s (target, first_day, last_day, source)'
                ' SELECT v.t, runs.first_day, runs.last_day, %L FROM (VALUES %s) v(t) CROSS JOIN ('
                ' SELECT min(d) AS first_day, max(d) AS last_day FROM ('
                ' SELECT d, d - (row_number() OVER (ORDER BY d))::integer AS island FROM (SELECT DISTINCT %s AS d FROM (%s) r) days'
                ' WHERE d IS NOT NULL AND isfinite(d)) islands GROUP BY island) runs'
                ' ORDER BY v.t, runs.first_day;' || chr(10) ||
                '  ELSIF EXISTS (%s) THEN' || chr(10) ||
                '    INSERT INTO %s (target, full_refresh, source) SELECT v.t, true, %L FROM (VALUES %s) v(t) ORDER BY v.t;' || chr(10) ||
                '  END IF;' || chr(10),
                g.day_column, CASE g.day_type WHEN 'timestamp' THEN 'timestamp without time zone' WHEN 'timestamptz' THEN 'timestamp with time zone' ELSE 'date' END,
                v_requests, 'trigger', g.targets, v_day, v_rows,
                v_rows, v_requests, 'trigger', g.targets);
        END LOOP;
        v_body := v_body || E'END IF;\n';
    END LOOP;
    v_body := v_body || E'RETURN NULL;\nEND';

    -- Nothing changed (the usual case when an instance starts and watches its configured targets again): no DDL, so no
    -- SHARE ROW EXCLUSIVE lock on the table that would wait for running writes and hold new ones back.
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure(v_function || '()') AND p.prosrc = v_body)
       AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = p_table AND NOT t.tgisinternal
               AND t.tgfoid = to_regprocedure(v_function || '()')
               AND t.tgname IN (p_prefix || '_capture_insert', p_prefix || '_capture_update', p_prefix || '_capture_delete', p_prefix || '_capture_truncate')) = 4 THEN
        RETURN true;
    END IF;
    FOREACH v_op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p_table AND t.tgname = p_prefix || '_capture_' || v_op) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', p_prefix || '_capture_' || v_op, v_table);
        END IF;
    END LOOP;

    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
                   v_function, v_body);
    -- Only its triggers call it (firing a trigger checks no EXECUTE privilege): nobody may attach it to a table of theirs.
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s() FROM PUBLIC', v_function);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS mvr_new FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                   p_prefix || '_capture_insert', v_table, v_function);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS mvr_old NEW TABLE AS mvr_new FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                   p_prefix || '_capture_update', v_table, v_function);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS mvr_old FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                   p_prefix || '_capture_delete', v_table, v_function);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                   p_prefix || '_capture_truncate', v_table, v_function);
    RETURN true;
END
$$;

COMMIT;
