using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>
/// The one <see cref="NpgsqlDataSource"/> the library uses: the app's, when registered in DI,
/// else one built (once, lazily) from <see cref="MatViewRefreshOptions.ConnectionString"/> and disposed with the container.
/// </summary>
internal sealed class RefreshDataSource(IServiceProvider services, IOptions<MatViewRefreshOptions> options) : IAsyncDisposable, IDisposable
{
    private readonly Lazy<(NpgsqlDataSource Source, bool Owned)> _source = new(() =>
    {
        var fromDi = services.GetService<NpgsqlDataSource>();
        if (fromDi is not null)
        {
            return (fromDi, false);
        }

        var connectionString = options.Value.ConnectionString;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                "MatViewRefresh needs a database: register an NpgsqlDataSource in DI (services.AddSingleton(NpgsqlDataSource.Create(...))) " +
                "or set MatViewRefresh:ConnectionString.");
        }

        return (NpgsqlDataSource.Create(connectionString), true);
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
