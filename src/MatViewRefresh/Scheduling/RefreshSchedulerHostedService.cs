using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>Starts the scheduler with the host (unless <see cref="MatViewRefreshOptions.StartScheduler"/> is off) and stops it with the host.</summary>
internal sealed class RefreshSchedulerHostedService(IServiceProvider services, IOptions<MatViewRefreshOptions> options) : IHostedService
{
    private IRefreshScheduler? _scheduler;

    // Resolved at start (when there are schedules), not at stop: a second StopAsync racing the container's disposal
    // (WebApplicationFactory stopping a Program whose app.Run() stops and disposes the host too) must not resolve from a disposed provider.
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Schedules.Count == 0)
        {
            return Task.CompletedTask;
        }

        _scheduler = services.GetRequiredService<IRefreshScheduler>();
        return options.Value.StartScheduler ? _scheduler.StartAsync(cancellationToken) : Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) =>
        options.Value.Schedules.Count > 0 ? (_scheduler ?? services.GetRequiredService<IRefreshScheduler>()).StopAsync(cancellationToken) : Task.CompletedTask;
}
