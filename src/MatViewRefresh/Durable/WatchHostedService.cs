using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>
/// Watches the targets of <c>MatViewRefresh:Watch</c> when the host starts. A target that cannot be watched (the database
/// down, a view missing) is logged and the host starts anyway; its triggers, once installed, stay in the database, and its
/// window or function target is registered with this instance's queue all the same, so that this instance's worker runs the
/// requests the triggers write (installed by an earlier start or another instance).
/// </summary>
internal sealed class WatchHostedService(IRefreshWatcher watcher, RefreshQueue queue, IOptions<MatViewRefreshOptions> options, ILogger<WatchHostedService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var watch = options.Value.Watch;
        foreach (var target in Targets(watch))
        {
            var resolved = target.WithDefaultSchema(options.Value.DefaultSchema);
            queue.RegisterWatched(resolved, resolved.Kind == RefreshTargetKind.Window ? new RefreshOptions { TimeZone = watch.TimeZone } : null);
            try
            {
                await watcher.WatchAsync(target, watch.TimeZone, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                WatchLog.WatchFailed(logger, e, target.ToString(), e.Message);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The configured targets (checked by the options validator: a bad one never gets here).</summary>
    internal static IEnumerable<RefreshTarget> Targets(RefreshWatchOptions watch) =>
        watch.Views.Select(RefreshTarget.View).Concat(watch.Windows.Select(w => RefreshTarget.Window(w.Table, w.DateColumn, w.Query)));

    /// <summary>Adds what is wrong with <c>MatViewRefresh:Watch</c> to <paramref name="failures"/>, one message per bad value, each naming it.</summary>
    internal static void Validate(RefreshWatchOptions? watch, List<string> failures)
    {
        const string p = "MatViewRefresh:Watch";
        if (watch is null)
        {
            failures.Add($"{p} is null.");
            return;
        }

        for (var i = 0; i < (watch.Views?.Count ?? 0); i++)
        {
            Check(() => RefreshTarget.View(watch.Views![i]), $"{p}:Views:{i}", failures);
        }

        for (var i = 0; i < (watch.Windows?.Count ?? 0); i++)
        {
            var w = watch.Windows![i];
            Check(() => RefreshTarget.Window(w.Table, w.DateColumn, w.Query), $"{p}:Windows:{i}", failures);
        }

        Check(() => LocalDays.FindZone(watch.TimeZone), $"{p}:TimeZone", failures);
    }

    private static void Check(Func<object> parse, string setting, List<string> failures)
    {
        try
        {
            _ = parse();
        }
        catch (ArgumentException e)
        {
            failures.Add($"{setting}: {e.Message.Split(" (Parameter", 2)[0]}");
        }
    }
}
