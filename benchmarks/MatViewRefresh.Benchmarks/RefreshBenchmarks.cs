using BenchmarkDotNet.Attributes;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The cost of the library around a refresh: advisory lock, timeouts, refresh log upsert and history insert,
/// all in one round trip, against a bare <c>REFRESH MATERIALIZED VIEW</c> of the same tiny view.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class RefreshBenchmarks
{
    private ThrowawayPostgres? _server;
    private NpgsqlDataSource _dataSource = null!;
    private ServiceProvider _services = null!;
    private IMaterializedViewRefresher _refresher = null!;
    private readonly RefreshTarget _target = RefreshTarget.View("bench.tiny");
    private readonly RefreshOptions _full = new() { Mode = RefreshMode.Full, Trigger = "benchmark" };

    // Synchronous on purpose: the in-process toolchain does not await asynchronous setup methods.
    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => CleanupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        (_server, var connectionString) = await BenchmarkDatabase.StartAsync();
        _dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var setup = _dataSource.CreateCommand("""
            DROP SCHEMA IF EXISTS bench CASCADE;
            CREATE SCHEMA bench;
            CREATE TABLE bench.source (id int PRIMARY KEY, value int NOT NULL);
            INSERT INTO bench.source SELECT g, g % 7 FROM generate_series(1, 10) g;
            CREATE MATERIALIZED VIEW bench.tiny AS SELECT value, count(*) AS n FROM bench.source GROUP BY value;
            """))
        {
            await setup.ExecuteNonQueryAsync();
        }

        _services = new ServiceCollection()
            .AddSingleton(_dataSource)
            .AddMatViewRefresh(o => o.HistoryRetention = TimeSpan.FromDays(1))
            .BuildServiceProvider();
        _refresher = _services.GetRequiredService<IMaterializedViewRefresher>();
        await _refresher.RefreshAsync(_target, _full); // schema, catalog cache, pool warmed
    }

    private async Task CleanupAsync()
    {
        await _services.DisposeAsync();
        await _dataSource.DisposeAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Benchmark(Baseline = true, Description = "raw Npgsql REFRESH")]
    public async Task Raw()
    {
        await using var command = _dataSource.CreateCommand("REFRESH MATERIALIZED VIEW bench.tiny");
        await command.ExecuteNonQueryAsync();
    }

    [Benchmark(Description = "RefreshAsync (lock + log, one round trip)")]
    public async Task<RefreshResult> Library() => await _refresher.RefreshAsync(_target, _full);

    [Benchmark(Description = "naive: separate statements in a transaction")]
    public async Task Naive()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var sql in NaiveSteps)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }

    private static readonly string[] NaiveSteps =
    [
        "SET LOCAL lock_timeout = '30s'",
        "SELECT pg_advisory_xact_lock(42)",
        "REFRESH MATERIALIZED VIEW bench.tiny",
        "INSERT INTO matview_refresh.refresh_log (target, scope, last_refreshed_at, duration_ms, mode, last_attempt_at) VALUES ('naive', '', now(), 1, 'full', now()) ON CONFLICT (target, scope) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
        "INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, mode, attempts, trigger) VALUES ('naive', now(), 1, true, 'full', 1, 'benchmark')",
    ];
}
