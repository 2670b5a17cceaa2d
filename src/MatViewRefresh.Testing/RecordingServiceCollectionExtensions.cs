using MatViewRefresh;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers MatViewRefresh for tests that must not touch a database.</summary>
public static class RecordingServiceCollectionExtensions
{
    /// <summary>
    /// Routes every refresh to <paramref name="executor"/> instead of a database: registers it as the
    /// <see cref="IRefreshExecutor"/>, takes every view as existing (populated, with a usable unique index) and every
    /// function target as valid, and turns off schema creation. Call it before or after <c>AddMatViewRefresh</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="executor">Records the commands that would run.</param>
    public static IServiceCollection AddRecordingRefreshExecutor(this IServiceCollection services, RecordingRefreshExecutor executor)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(executor);
        services.RemoveAll<IRefreshExecutor>();
        services.RemoveAll<IMatViewCatalog>();
        services.AddSingleton<IRefreshExecutor>(executor);
        services.AddSingleton<IMatViewCatalog, PermissiveCatalog>();
        services.PostConfigure<MatViewRefreshOptions>(o => o.AutoCreateSchema = false);
        return services;
    }

    /// <summary>A catalog that says yes: every view exists, is populated and has a usable unique index; every function is valid.</summary>
    private sealed class PermissiveCatalog : IMatViewCatalog
    {
        public Task<MatViewInfo?> FindAsync(QualifiedName name, CancellationToken cancellationToken) =>
            Task.FromResult<MatViewInfo?>(new MatViewInfo(0, name, IsPopulated: true, HasUsableUniqueIndex: true));

        public Task<MaterializedViewNotFoundException> NotFoundAsync(QualifiedName name, CancellationToken cancellationToken) =>
            Task.FromResult(new MaterializedViewNotFoundException(name, []));

        public Task<bool> ValidateFunctionAsync(RefreshTarget target, CancellationToken cancellationToken) => Task.FromResult(true); // unknown

        public Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken) =>
            throw new NotSupportedException("Batches need the real catalog: test RefreshManyAsync against a database (ThrowawayPostgres).");
    }
}
