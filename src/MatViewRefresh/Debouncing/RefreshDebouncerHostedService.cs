using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MatViewRefresh;

/// <summary>Flushes the debouncer when the host stops: pending refreshes run now, within the shutdown timeout.</summary>
internal sealed class RefreshDebouncerHostedService(IServiceProvider services) : IHostedService
{
    private IRefreshDebouncer? _debouncer;

    // Resolved at start, not at stop: a second StopAsync racing the container's disposal (WebApplicationFactory stopping
    // a Program whose app.Run() stops and disposes the host too) must not resolve from a disposed provider.
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _debouncer = services.GetRequiredService<IRefreshDebouncer>();
        return Task.CompletedTask;
    }

    // An app that registered its own IRefreshDebouncer has nothing of ours to flush.
    public Task StopAsync(CancellationToken cancellationToken) =>
        (_debouncer ?? services.GetRequiredService<IRefreshDebouncer>()) is RefreshDebouncer debouncer ? debouncer.FlushAsync(cancellationToken) : Task.CompletedTask;
}
