namespace MatViewRefresh.Benchmarks;

/// <summary>A materialized view the refresh benchmarks run on: its target, and the SQL that creates it (in a schema of its own, dropped first).</summary>
/// <param name="Label">A short name for reports.</param>
/// <param name="Target">The view refreshed.</param>
/// <param name="SetupSql">Creates the view and what it reads.</param>
public sealed record BenchmarkView(string Label, RefreshTarget Target, string SetupSql)
{
    /// <summary>A 7-row view over 10 rows: the refresh itself costs next to nothing, so the library's cost shows.</summary>
    public static BenchmarkView Tiny { get; } = new(
        "tiny view (7 rows)",
        RefreshTarget.View("bench.tiny"),
        """
        DROP SCHEMA IF EXISTS bench CASCADE;
        CREATE SCHEMA bench;
        CREATE TABLE bench.source (id int PRIMARY KEY, value int NOT NULL);
        INSERT INTO bench.source SELECT g, g % 7 FROM generate_series(1, 10) g;
        CREATE MATERIALIZED VIEW bench.tiny AS SELECT value, count(*) AS n FROM bench.source GROUP BY value;
        """);

    /// <summary>A view with real work in it: 200,000 source rows aggregated into 1,000.</summary>
    public static BenchmarkView Large { get; } = new(
        "200k-row view (200,000 rows -> 1,000)",
        RefreshTarget.View("bench_large.daily"),
        """
        DROP SCHEMA IF EXISTS bench_large CASCADE;
        CREATE SCHEMA bench_large;
        CREATE TABLE bench_large.events (id int PRIMARY KEY, bucket int NOT NULL, amount numeric NOT NULL);
        INSERT INTO bench_large.events SELECT g, g % 1000, g % 97 FROM generate_series(1, 200000) g;
        ANALYZE bench_large.events;
        CREATE MATERIALIZED VIEW bench_large.daily AS SELECT bucket, count(*) AS n, sum(amount) AS total FROM bench_large.events GROUP BY bucket;
        """);

    /// <summary>
    /// What the library does, written the obvious way: the same lock, timeout, refresh, log upsert and history
    /// insert as separate statements in an explicit transaction (one round trip each).
    /// </summary>
    public IReadOnlyList<string> NaiveSteps { get; } =
    [
        "SET LOCAL lock_timeout = '30s'",
        "SELECT pg_advisory_xact_lock(42)",
        "REFRESH MATERIALIZED VIEW " + Target.Name.ToSql(),
        "INSERT INTO matview_refresh.refresh_log (target, scope, last_refreshed_at, duration_ms, mode, last_attempt_at) VALUES ('naive', '', now(), 1, 'full', now()) ON CONFLICT (target, scope) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
        "INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, mode, attempts, trigger) VALUES ('naive', now(), 1, true, 'full', 1, 'benchmark')",
    ];

    /// <inheritdoc />
    public override string ToString() => Label;
}
