using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.Benchmarks;

/// <summary>A refresher that does nothing but count, for measuring the debouncer alone.</summary>
internal sealed class NoOpRefresher : IMaterializedViewRefresher
{
    private int _runs;

    public int Runs => Volatile.Read(ref _runs);

    public static ServiceProvider Services(Action<MatViewRefreshOptions> configure, NoOpRefresher? refresher = null) =>
        new ServiceCollection()
            .AddSingleton<IMaterializedViewRefresher>(refresher ?? new NoOpRefresher())
            .AddMatViewRefresh(configure)
            .BuildServiceProvider();

    public Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _runs);
        var now = DateTimeOffset.UtcNow;
        return Task.FromResult(new RefreshResult { Target = target, Outcome = RefreshOutcome.Succeeded, RequestedMode = RefreshMode.Auto, StartedAt = now, FinishedAt = now, Attempts = 1 });
    }

    public Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
}
