-- Seed 002: jobs and their objects, and the job_progress materialized view the API serves (idempotent).
CREATE TABLE IF NOT EXISTS jobs (
    job_id     text PRIMARY KEY,
    status     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS job_objects (
    job_id    text NOT NULL REFERENCES jobs,
    object_id int  NOT NULL,
    state     text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    PRIMARY KEY (job_id, object_id)
);

CREATE MATERIALIZED VIEW IF NOT EXISTS job_progress AS
    SELECT j.job_id, j.status,
           count(o.object_id) AS total,
           count(*) FILTER (WHERE o.state = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE o.state = 'failed') AS failed
      FROM jobs j LEFT JOIN job_objects o USING (job_id)
     GROUP BY j.job_id, j.status;
CREATE UNIQUE INDEX IF NOT EXISTS job_progress_job_id ON job_progress (job_id);

-- A demo job: 100,000 objects, half of them done.
INSERT INTO jobs (job_id, status) VALUES ('abc-123', 'processing') ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, object_id, state)
SELECT 'abc-123', i, CASE WHEN i <= 50000 THEN 'succeeded' ELSE 'pending' END FROM generate_series(1, 100000) AS i
ON CONFLICT DO NOTHING;
