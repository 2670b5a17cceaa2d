using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>One throwaway PostgreSQL for the whole test run (stopped at process exit, or by its watchdog if the run is killed).</summary>
internal static class SharedServer
{
    private static readonly Lazy<Task<ThrowawayPostgres>> Server = new(() => ThrowawayPostgres.StartAsync());

    public static Task<ThrowawayPostgres> GetAsync() => Server.Value;
}

/// <summary>A fresh database per test class, on the shared server. Fails (never skips) when no server can be had.</summary>
public class DatabaseFixture : IAsyncLifetime
{
    private readonly List<ServiceProvider> _providers = [];

    public string ConnectionString { get; private set; } = string.Empty;

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    /// <summary>The server the database is created on: the one shared by the test run, unless a fixture needs its own.</summary>
    protected virtual Task<ThrowawayPostgres> ServerAsync() => SharedServer.GetAsync();

    public virtual async Task InitializeAsync()
    {
        var server = await ServerAsync();
        ConnectionString = await server.CreateDatabaseAsync();
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }

        await DataSource.DisposeAsync();
    }

    /// <summary>A container as a host app builds it: its own NpgsqlDataSource (so its own connections) and AddMatViewRefresh.</summary>
    public ServiceProvider CreateServices(Action<MatViewRefreshOptions>? configure = null, Action<IServiceCollection>? more = null, RecordingLoggerProvider? logs = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(ConnectionString));
        services.AddLogging(b => b.AddProvider(logs ?? Logs).SetMinimumLevel(LogLevel.Debug));
        services.AddMatViewRefresh(o =>
        {
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
            o.LockTimeout = TimeSpan.FromSeconds(20);
            configure?.Invoke(o);
        });
        more?.Invoke(services);
        var provider = services.BuildServiceProvider();
        lock (_providers)
        {
            _providers.Add(provider);
        }

        return provider;
    }

    public RecordingLoggerProvider Logs { get; } = new();

    public async Task ExecuteAsync(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        var value = await command.ExecuteScalarAsync();
        return (T)value!;
    }

    /// <summary>Awaits a condition the test cannot be told about directly (a server-side state), polling until a deadline.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        var poll = TimeSpan.FromMilliseconds(20);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Timed out waiting for: " + what);
            }

            await Task.Delay(poll);
        }
    }
}
