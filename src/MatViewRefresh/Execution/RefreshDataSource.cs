using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>
/// The one <see cref="NpgsqlDataSource"/> the library uses: the keyed one named by <see cref="MatViewRefreshOptions.DataSourceKey"/>,
/// else the app's unkeyed one, else one built (once, lazily) from <see cref="MatViewRefreshOptions.ConnectionString"/> with the
/// app's logger factory and disposed with the container.
/// </summary>
internal sealed class RefreshDataSource(IServiceProvider services, IOptions<MatViewRefreshOptions> options) : IAsyncDisposable, IDisposable
{
    private readonly Lazy<(NpgsqlDataSource Source, bool Owned)> _source = new(() =>
    {
        var key = options.Value.DataSourceKey;
        if (key is not null)
        {
            return (services.GetKeyedService<NpgsqlDataSource>(key) ?? throw new InvalidOperationException(
                $"MatViewRefresh:DataSourceKey is '{key}', but no NpgsqlDataSource is registered with that key " +
                $"(services.AddKeyedSingleton<NpgsqlDataSource>(\"{key}\", …))."), false);
        }

        var fromDi = services.GetService<NpgsqlDataSource>();
        if (fromDi is not null)
        {
            return (fromDi, false);
        }

        var connectionString = options.Value.ConnectionString;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                "MatViewRefresh needs a database: register an NpgsqlDataSource in DI (services.AddSingleton(NpgsqlDataSource.Create(...))), " +
                "set MatViewRefresh:DataSourceKey to a keyed one, or set MatViewRefresh:ConnectionString.");
        }

        var builder = new NpgsqlDataSourceBuilder(connectionString);
        if (services.GetService<ILoggerFactory>() is { } loggerFactory)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        return (builder.Build(), true);
    });

    public NpgsqlDataSource Value => _source.Value.Source;

    // Containers disposed synchronously must not throw because of us.
    public void Dispose()
    {
        if (_source.IsValueCreated && _source.Value.Owned)
        {
            _source.Value.Source.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_source.IsValueCreated && _source.Value.Owned)
        {
            await _source.Value.Source.DisposeAsync().ConfigureAwait(false);
        }
    }
}
