
namespace MatViewRefresh.Tests;

/// <summary>A refresher whose runs take time on a fake clock and whose outcomes a test decides.</summary>
internal sealed class FakeRefresher(TimeProvider clock) : IMaterializedViewRefresher
{
    private readonly object _gate = new();
    private long _sequence;

    public List<Run> Runs { get; } = [];

    /// <summary>How long each run takes (by run index); the default is instant.</summary>
    public Func<int, TimeSpan> Duration { get; set; } = _ => TimeSpan.Zero;

    /// <summary>The outcome of each run (by run index); the default is success.</summary>
    public Func<int, RefreshOutcome> Outcome { get; set; } = _ => RefreshOutcome.Succeeded;

    /// <summary>Shared with the test: request and run events get increasing numbers.</summary>
    public long NextSequence() => Interlocked.Increment(ref _sequence);

    public async Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
    {
        Run run;
        lock (_gate)
        {
            run = new Run(target, clock.GetUtcNow(), NextSequence(), Runs.Count, options?.SkipIfBusy ?? false);
            Runs.Add(run);
        }

        var duration = Duration(run.Index);
        if (duration > TimeSpan.Zero)
        {
            // Completes inside AdvanceWithoutContext, and (no synchronization context) continues right there.
            var elapsed = new TaskCompletionSource();
            using var timer = clock.CreateTimer(_ => elapsed.TrySetResult(), null, duration, Timeout.InfiniteTimeSpan);
            await elapsed.Task.ConfigureAwait(false);
        }

        run.End = clock.GetUtcNow();
        var outcome = Outcome(run.Index);
        return new RefreshResult
        {
            Target = target,
            Outcome = outcome,
            RequestedMode = RefreshMode.Auto,
            StartedAt = run.Start,
            FinishedAt = run.End.Value,
            Attempts = 1,
            Error = outcome == RefreshOutcome.Failed ? new RefreshError("XX000", "simulated failure") : null,
        };
    }

    public Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    internal sealed record Run(RefreshTarget Target, DateTimeOffset Start, long Sequence, int Index, bool SkipIfBusy)
    {
        public DateTimeOffset? End { get; set; }
    }
}
