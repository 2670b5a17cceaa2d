using MatViewRefresh;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers MatViewRefresh in an <see cref="IServiceCollection"/>.</summary>
public static class MatViewRefreshServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="IMaterializedViewRefresher"/>, <see cref="IRefreshLog"/>, <see cref="IRefreshDebouncer"/> (flushed when the host
    /// stops), <see cref="IRefreshQueue"/> (its worker runs with the host when <see cref="DurableRefreshOptions.Enabled"/>), <see cref="IRefreshScheduler"/> (started and stopped with the host when schedules are configured), <see cref="IRefreshWatcher"/> (the targets of
    /// <see cref="MatViewRefreshOptions.Watch"/> watched when the host starts), and the default <see cref="IRefreshExecutor"/> and <see cref="IRefreshTaskFactory"/>.
    /// Uses the <see cref="Npgsql.NpgsqlDataSource"/> registered in DI, else builds one from
    /// <see cref="MatViewRefreshOptions.ConnectionString"/>. Options are validated when the host starts.
    /// Calling it again adds nothing twice; services registered before it (an executor, a <see cref="TimeProvider"/>) are kept.
    /// </summary>
    /// <param name="services">The services.</param>
    public static IServiceCollection AddMatViewRefresh(this IServiceCollection services) => AddCore(services, null);

    /// <summary>Adds MatViewRefresh (see <see cref="AddMatViewRefresh(IServiceCollection)"/>) with options set in code.</summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets options in code; runs after any configuration binding.</param>
    public static IServiceCollection AddMatViewRefresh(this IServiceCollection services, Action<MatViewRefreshOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddCore(services, configure);
    }

    /// <summary>Adds MatViewRefresh with options bound from a configuration section (usually <c>MatViewRefresh</c>).</summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The section to bind, for example <c>builder.Configuration.GetSection("MatViewRefresh")</c>.</param>
    /// <param name="configure">Sets options in code after binding.</param>
    public static IServiceCollection AddMatViewRefresh(this IServiceCollection services, IConfiguration configuration, Action<MatViewRefreshOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<MatViewRefreshOptions>().Bind(configuration);
        return AddCore(services, configure);
    }

    private static IServiceCollection AddCore(IServiceCollection services, Action<MatViewRefreshOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<MatViewRefreshOptions>().ValidateOnStart();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.AddLogging();
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<RefreshMetrics>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MatViewRefreshOptions>, MatViewRefreshOptionsDataValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MatViewRefreshOptions>, MatViewRefreshOptionsValidator>());
        services.TryAddSingleton<RefreshDataSource>();
        services.TryAddSingleton<RefreshLogSchema>();
        services.TryAddSingleton<IMatViewCatalog, PostgresMatViewCatalog>();
        services.TryAddSingleton<IRefreshExecutor, NpgsqlRefreshExecutor>();
        services.TryAddSingleton<IMaterializedViewRefresher, MaterializedViewRefresher>();
        services.TryAddSingleton<IRefreshLog, RefreshLog>();
        services.TryAddSingleton<IRefreshTaskFactory, BackgroundRefreshTaskFactory>();
        services.TryAddSingleton<IRefreshDebouncer, RefreshDebouncer>();
        services.TryAddSingleton<IDatabaseRefreshScheduler, DatabaseRefreshScheduler>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RefreshDebouncerHostedService>());
        services.TryAddSingleton<RefreshQueue>();
        services.TryAddSingleton<IRefreshQueue>(static sp => sp.GetRequiredService<RefreshQueue>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, DurableRefreshWorker>());
        services.TryAddSingleton<IScheduleTickStore, NpgsqlScheduleTickStore>();
        services.TryAddSingleton<IRefreshScheduler, RefreshScheduler>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RefreshSchedulerHostedService>());
        services.TryAddSingleton<IRefreshWatcher, RefreshWatcher>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WatchHostedService>());
        return services;
    }
}
