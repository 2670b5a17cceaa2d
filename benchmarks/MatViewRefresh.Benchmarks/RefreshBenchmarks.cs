using BenchmarkDotNet.Attributes;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The cost of the library around a refresh: advisory lock, timeouts, refresh log upsert and history insert,
/// all in one round trip, against a bare <c>REFRESH MATERIALIZED VIEW</c> of the same tiny view.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class RefreshBenchmarks : RefreshBenchmarkBase
{
    private static readonly string[] NaiveSteps =
    [
        "SET LOCAL lock_timeout = '30s'",
        "SELECT pg_advisory_xact_lock(42)",
        "REFRESH MATERIALIZED VIEW bench.tiny",
        "INSERT INTO matview_refresh.refresh_log (target, scope, last_refreshed_at, duration_ms, mode, last_attempt_at) VALUES ('naive', '', now(), 1, 'full', now()) ON CONFLICT (target, scope) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
        "INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, mode, attempts, trigger) VALUES ('naive', now(), 1, true, 'full', 1, 'benchmark')",
    ];

    protected override RefreshTarget Target { get; } = RefreshTarget.View("bench.tiny");

    protected override string SetupSql => """
        DROP SCHEMA IF EXISTS bench CASCADE;
        CREATE SCHEMA bench;
        CREATE TABLE bench.source (id int PRIMARY KEY, value int NOT NULL);
        INSERT INTO bench.source SELECT g, g % 7 FROM generate_series(1, 10) g;
        CREATE MATERIALIZED VIEW bench.tiny AS SELECT value, count(*) AS n FROM bench.source GROUP BY value;
        """;

    [Benchmark(Baseline = true, Description = "raw Npgsql REFRESH")]
    public Task Raw() => RawRefreshAsync();

    [Benchmark(Description = "RefreshAsync (lock + log, one round trip)")]
    public Task<RefreshResult> Library() => Refresher.RefreshAsync(Target, Full);

    [Benchmark(Description = "naive: separate statements in a transaction")]
    public async Task Naive()
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var sql in NaiveSteps)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }
}
