using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>A database with one materialized view, and a refresher on it: what the refresh benchmarks share.</summary>
public abstract class RefreshBenchmarkBase
{
    private ThrowawayPostgres? _server;
    private ServiceProvider _services = null!;

    protected static RefreshOptions Full { get; } = new() { Mode = RefreshMode.Full, Trigger = "benchmark" };

    protected NpgsqlDataSource DataSource { get; private set; } = null!;

    protected IMaterializedViewRefresher Refresher { get; private set; } = null!;

    /// <summary>The view refreshed.</summary>
    protected abstract RefreshTarget Target { get; }

    /// <summary>Creates the view (in a schema of its own, dropped first).</summary>
    protected abstract string SetupSql { get; }

    // Synchronous on purpose: the in-process toolchain does not await asynchronous setup methods.
    [BenchmarkDotNet.Attributes.GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [BenchmarkDotNet.Attributes.GlobalCleanup]
    public void Cleanup() => CleanupAsync().GetAwaiter().GetResult();

    /// <summary>The baseline: a bare <c>REFRESH MATERIALIZED VIEW</c> through Npgsql.</summary>
    protected async Task RawRefreshAsync()
    {
        await using var command = DataSource.CreateCommand("REFRESH MATERIALIZED VIEW " + Target.Name.ToSql());
        await command.ExecuteNonQueryAsync();
    }

    private async Task SetupAsync()
    {
        (_server, var connectionString) = await BenchmarkDatabase.StartAsync();
        DataSource = NpgsqlDataSource.Create(connectionString);
        await using (var setup = DataSource.CreateCommand(SetupSql))
        {
            await setup.ExecuteNonQueryAsync();
        }

        _services = new ServiceCollection()
            .AddSingleton(DataSource)
            .AddMatViewRefresh(o => o.HistoryRetention = TimeSpan.FromDays(1))
            .BuildServiceProvider();
        Refresher = _services.GetRequiredService<IMaterializedViewRefresher>();
        await Refresher.RefreshAsync(Target, Full); // schema, catalog cache and pool warmed
    }

    private async Task CleanupAsync()
    {
        await _services.DisposeAsync();
        await DataSource.DisposeAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
