using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>Starts the scheduler with the host (unless <see cref="MatViewRefreshOptions.StartScheduler"/> is off) and stops it with the host.</summary>
internal sealed class RefreshSchedulerHostedService(IServiceProvider services, IOptions<MatViewRefreshOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        options.Value.StartScheduler && options.Value.Schedules.Count > 0
            ? services.GetRequiredService<IRefreshScheduler>().StartAsync(cancellationToken)
            : Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) =>
        options.Value.Schedules.Count > 0 ? services.GetRequiredService<IRefreshScheduler>().StopAsync(cancellationToken) : Task.CompletedTask;
}
