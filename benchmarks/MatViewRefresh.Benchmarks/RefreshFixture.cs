using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// What the refresh benchmarks and the overhead report share: one database (see <see cref="BenchmarkDatabase"/>) with
/// the benchmark views in it, an <see cref="NpgsqlDataSource"/>, a refresher built by <c>AddMatViewRefresh</c> on it,
/// and the three ways of refreshing compared: raw <c>REFRESH</c>, <see cref="IMaterializedViewRefresher.RefreshAsync"/>,
/// and the naive multi-statement version.
/// </summary>
public sealed class RefreshFixture : IAsyncDisposable
{
    private readonly ThrowawayPostgres? _server;
    private readonly ServiceProvider _services;

    private RefreshFixture(ThrowawayPostgres? server, string connectionString, NpgsqlDataSource dataSource, ServiceProvider services)
    {
        _server = server;
        ConnectionString = connectionString;
        DataSource = dataSource;
        _services = services;
        Refresher = services.GetRequiredService<IMaterializedViewRefresher>();
    }

    /// <summary>The options of every library refresh: a full refresh (no catalog-driven choice), trigger <c>benchmark</c>.</summary>
    public static RefreshOptions Full { get; } = new() { Mode = RefreshMode.Full, Trigger = "benchmark" };

    /// <summary>The benchmark database.</summary>
    public string ConnectionString { get; }

    /// <summary>The data source every method uses (the library's too: it is registered in DI).</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The refresher from <c>AddMatViewRefresh</c>.</summary>
    public IMaterializedViewRefresher Refresher { get; }

    /// <summary>Starts the database, creates <paramref name="views"/>, builds the refresher and refreshes each view once through it.</summary>
    /// <param name="views">The views to create.</param>
    /// <param name="serverSettings">Extra settings of a throwaway server (ignored for MATVIEWREFRESH_CONNECTION).</param>
    public static async Task<RefreshFixture> StartAsync(IEnumerable<BenchmarkView> views, IReadOnlyDictionary<string, string>? serverSettings = null)
    {
        var (server, connectionString) = await BenchmarkDatabase.StartAsync(serverSettings);
        var dataSource = NpgsqlDataSource.Create(connectionString);
        var fixture = new RefreshFixture(server, connectionString, dataSource, BuildServices(dataSource));
        foreach (var view in views)
        {
            await using (var setup = dataSource.CreateCommand(view.SetupSql))
            {
                await setup.ExecuteNonQueryAsync();
            }

            await fixture.LibraryAsync(view); // schema, catalog cache and pool warmed
        }

        return fixture;
    }

    /// <summary>Attaches to a database <see cref="StartAsync"/> set up, with its own data source and refresher (for other connection settings).</summary>
    /// <param name="connectionString">The database, with whatever settings the connections should have.</param>
    /// <param name="views">Views to refresh once through the new refresher (its catalog cache and pool warmed).</param>
    public static async Task<RefreshFixture> AttachAsync(string connectionString, IEnumerable<BenchmarkView> views)
    {
        var dataSource = NpgsqlDataSource.Create(connectionString);
        var fixture = new RefreshFixture(null, connectionString, dataSource, BuildServices(dataSource));
        foreach (var view in views)
        {
            await fixture.LibraryAsync(view);
        }

        return fixture;
    }

    /// <summary>
    /// Services as an app would register them (<c>AddMatViewRefresh</c> on the app's data source), with
    /// <paramref name="configure"/> applied to the collection afterwards (to replace a service, say).
    /// </summary>
    public static ServiceProvider BuildServices(NpgsqlDataSource dataSource, Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection()
            .AddSingleton(dataSource)
            .AddMatViewRefresh(o => o.HistoryRetention = TimeSpan.FromDays(1));
        configure?.Invoke(services);
        return services.BuildServiceProvider();
    }

    /// <summary>The baseline: a bare <c>REFRESH MATERIALIZED VIEW</c> through Npgsql.</summary>
    public async Task RawAsync(BenchmarkView view)
    {
        await using var command = DataSource.CreateCommand("REFRESH MATERIALIZED VIEW " + view.Target.Name.ToSql());
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The library: <see cref="IMaterializedViewRefresher.RefreshAsync"/>; throws when the refresh did not succeed.</summary>
    public Task<RefreshResult> LibraryAsync(BenchmarkView view) => LibraryAsync(Refresher, view);

    /// <summary><see cref="IMaterializedViewRefresher.RefreshAsync"/> of another refresher (a variant of the library).</summary>
    public static async Task<RefreshResult> LibraryAsync(IMaterializedViewRefresher refresher, BenchmarkView view)
    {
        ArgumentNullException.ThrowIfNull(refresher);
        ArgumentNullException.ThrowIfNull(view);
        var result = await refresher.RefreshAsync(view.Target, Full);
        return result.Outcome == RefreshOutcome.Succeeded
            ? result
            : throw new InvalidOperationException($"The benchmark refresh of {view.Target} did not succeed: {result.Outcome} {result.Error}");
    }

    /// <summary>The naive version: <see cref="BenchmarkView.NaiveSteps"/> one by one in an explicit transaction.</summary>
    public async Task NaiveAsync(BenchmarkView view)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var sql in view.NaiveSteps)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await DataSource.DisposeAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
