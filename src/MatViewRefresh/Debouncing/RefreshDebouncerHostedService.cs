using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MatViewRefresh;

/// <summary>Flushes the debouncer when the host stops: pending refreshes run now, within the shutdown timeout.</summary>
internal sealed class RefreshDebouncerHostedService(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // Resolved at stop: an app that registered its own IRefreshDebouncer has nothing of ours to flush.
    public Task StopAsync(CancellationToken cancellationToken) =>
        services.GetRequiredService<IRefreshDebouncer>() is RefreshDebouncer debouncer ? debouncer.FlushAsync(cancellationToken) : Task.CompletedTask;
}
