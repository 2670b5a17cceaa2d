using BenchmarkDotNet.Attributes;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The same comparison as <see cref="RefreshBenchmarks"/> on a view with real work in it (200,000 source rows
/// aggregated into 1,000): the library's cost is the same absolute amount, so the ratio shows what it weighs in practice.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class RefreshLargerViewBenchmarks : RefreshBenchmarkBase
{
    protected override RefreshTarget Target { get; } = RefreshTarget.View("bench_large.daily");

    protected override string SetupSql => """
        DROP SCHEMA IF EXISTS bench_large CASCADE;
        CREATE SCHEMA bench_large;
        CREATE TABLE bench_large.events (id int PRIMARY KEY, bucket int NOT NULL, amount numeric NOT NULL);
        INSERT INTO bench_large.events SELECT g, g % 1000, g % 97 FROM generate_series(1, 200000) g;
        ANALYZE bench_large.events;
        CREATE MATERIALIZED VIEW bench_large.daily AS SELECT bucket, count(*) AS n, sum(amount) AS total FROM bench_large.events GROUP BY bucket;
        """;

    [Benchmark(Baseline = true, Description = "raw Npgsql REFRESH (200k rows -> 1k)")]
    public Task Raw() => RawRefreshAsync();

    [Benchmark(Description = "RefreshAsync (200k rows -> 1k)")]
    public Task<RefreshResult> Library() => Refresher.RefreshAsync(Target, Full);
}
