using System.Collections.Concurrent;
using MatViewRefresh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

/// <summary>Tick claims in memory, shared by every scheduler of a test (the "database" of several instances).</summary>
internal sealed class MemoryTickStore : IScheduleTickStore
{
    public ConcurrentDictionary<(string Schedule, DateTimeOffset Tick), int> Claims { get; } = new();

    private int _claimer;

    /// <summary>What <see cref="NewestDataAsync"/> returns.</summary>
    public DateTimeOffset? NewestData { get; set; }

    public Task<DateTimeOffset?> NewestDataAsync(QualifiedName view, string column, CancellationToken cancellationToken) => Task.FromResult(NewestData);

    /// <summary>The run holding each schedule across instances (leases never lapse here).</summary>
    public ConcurrentDictionary<string, string> Running { get; } = new();

    public Task<bool> TryStartRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken) =>
        Task.FromResult(Running.TryAdd(schedule, run));

    public Task<bool> RenewRunAsync(string schedule, string run, TimeSpan lease, CancellationToken cancellationToken) =>
        Task.FromResult(Running.TryGetValue(schedule, out var holder) && holder == run);

    public Task EndRunAsync(string schedule, string run, CancellationToken cancellationToken)
    {
        Running.TryRemove(new KeyValuePair<string, string>(schedule, run));
        return Task.CompletedTask;
    }

    public Task<bool> TryClaimAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken) =>
        Task.FromResult(Claims.TryAdd((schedule, tick), Interlocked.Increment(ref _claimer)));

    public Task<bool> TryClaimCatchUpAsync(string schedule, DateTimeOffset tick, CancellationToken cancellationToken)
    {
        lock (Claims)
        {
            var mine = Claims.Keys.Where(k => k.Schedule == schedule).ToList();
            return Task.FromResult(mine.Count > 0 && !mine.Any(k => k.Tick >= tick) && Claims.TryAdd((schedule, tick), 0));
        }
    }
}

/// <summary>Records batches; each takes <see cref="Duration"/> on the fake clock (completing inside Advance) and honours cancellation.</summary>
internal sealed class ScheduledRefresher(TimeProvider clock) : IMaterializedViewRefresher
{
    public ConcurrentQueue<(RefreshSelection Selection, RefreshOptions Options, DateTimeOffset At)> Batches { get; } = new();

    public Func<int, TimeSpan> Duration { get; set; } = _ => TimeSpan.Zero;

    public ConcurrentQueue<(RefreshTarget Target, RefreshOptions Options, DateTimeOffset At)> Targets { get; } = new();

    public Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        var now = clock.GetUtcNow();
        Targets.Enqueue((target, options!, now));
        return Task.FromResult(new RefreshResult { Target = target, Outcome = RefreshOutcome.Succeeded, RequestedMode = RefreshMode.Auto, StartedAt = now, FinishedAt = now });
    }

    public async Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        var index = Batches.Count;
        var start = clock.GetUtcNow();
        Batches.Enqueue((selection, options!, start));
        var duration = Duration(index);
        if (duration > TimeSpan.Zero)
        {
            var elapsed = new TaskCompletionSource();
            using var timer = clock.CreateTimer(_ => elapsed.TrySetResult(), null, duration, Timeout.InfiniteTimeSpan);
            using var registration = cancellationToken.Register(() => elapsed.TrySetCanceled(cancellationToken));
            await elapsed.Task.ConfigureAwait(false);
        }

        return new RefreshBatchResult { Status = RefreshBatchStatus.Success, Results = [], Duration = clock.GetUtcNow() - start };
    }

    public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();
}

internal static class Schedulers
{
    public static RefreshScheduler Create(FakeTimeProvider time, IMaterializedViewRefresher refresher, IScheduleTickStore store, params (string Name, RefreshScheduleOptions Options)[] schedules)
    {
        var options = new MatViewRefreshOptions { Randomizer = () => 0.5 };
        foreach (var (name, schedule) in schedules)
        {
            options.Schedules[name] = schedule;
        }

        return new RefreshScheduler(refresher, store, new InlineRefreshTaskFactory(), time, Options.Create(options), NullLogger<RefreshScheduler>.Instance);
    }

    /// <summary>Moves the clock in steps, so every timer fires at its own time.</summary>
    public static void Step(this FakeTimeProvider time, TimeSpan total, TimeSpan step)
    {
        for (var moved = TimeSpan.Zero; moved < total; moved += step)
        {
            time.AdvanceWithoutContext(step);
        }
    }
}
