-- IngestApi: raw samples, and a per-user daily mart recomputed by marts.refresh_daily_features_user.
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS ingest.samples (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid             NOT NULL,
    ts          timestamptz      NOT NULL,
    type        text             NOT NULL,
    value       double precision NOT NULL,
    inserted_at timestamptz      NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS samples_user_ts ON ingest.samples (user_id, ts);

-- The time zone a user last ingested with: it decides what "a day" is for that user's mart.
CREATE TABLE IF NOT EXISTS ingest.user_settings (
    user_id uuid PRIMARY KEY,
    tz      text NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.daily_features (
    user_id      uuid             NOT NULL,
    day_local    date             NOT NULL,
    sample_count bigint           NOT NULL,
    value_sum    double precision NOT NULL,
    value_avg    double precision NOT NULL,
    PRIMARY KEY (user_id, day_local)
);

-- Recomputes one user's local day from the raw samples.
CREATE OR REPLACE FUNCTION marts.refresh_daily_features_user(user_id uuid, day_local date)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_tz text;
BEGIN
    SELECT s.tz INTO v_tz FROM ingest.user_settings s WHERE s.user_id = refresh_daily_features_user.user_id;
    v_tz := coalesce(v_tz, 'America/Chicago');

    DELETE FROM marts.daily_features f
     WHERE f.user_id = refresh_daily_features_user.user_id AND f.day_local = refresh_daily_features_user.day_local;

    INSERT INTO marts.daily_features (user_id, day_local, sample_count, value_sum, value_avg)
    SELECT s.user_id, refresh_daily_features_user.day_local, count(*), sum(s.value), avg(s.value)
      FROM ingest.samples s
     WHERE s.user_id = refresh_daily_features_user.user_id
       AND s.ts >= (refresh_daily_features_user.day_local::timestamp AT TIME ZONE v_tz)
       AND s.ts < ((refresh_daily_features_user.day_local + 1)::timestamp AT TIME ZONE v_tz)
     GROUP BY s.user_id;
END
$$;
