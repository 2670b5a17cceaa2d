namespace MatViewRefresh;

/// <summary>
/// The state of one coalescing key; every field is read and written under a lock on the entry. Times are ticks of
/// the debouncer's monotonic clock (<see cref="TimeProvider.GetTimestamp"/> since the debouncer was created).
/// </summary>
internal sealed class DebounceEntry(string key)
{
    public const long None = long.MinValue;

    public string Key { get; } = key;

    public RefreshTarget? Target;

    /// <summary>Requests not yet covered by a started run.</summary>
    public PendingRun? Pending;

    /// <summary>The run in progress (or waiting for a free run slot).</summary>
    public PendingRun? Running;

    public long FirstRequestTicks;
    public long DueTicks;
    public long LastRunStartTicks = None;

    /// <summary>The pending run is waiting out a failure backoff: requests join it but do not move it.</summary>
    public bool RetryWait;

    public ITimer? Timer;

    /// <summary>Forgotten: a request that finds it must take a new entry.</summary>
    public bool Removed;
}

/// <summary>A run-to-be and everyone waiting for it.</summary>
internal sealed class PendingRun
{
    private List<PendingRun>? _merged;

    public TaskCompletionSource<RefreshResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Failures { get; set; }

    /// <summary>Folds <paramref name="other"/> into this run: it completes when this one does.</summary>
    public void Merge(PendingRun other)
    {
        (_merged ??= []).Add(other);
        Failures = Math.Max(Failures, other.Failures);
    }

    public void Complete(RefreshResult result)
    {
        Completion.TrySetResult(result);
        if (_merged is not null)
        {
            foreach (var other in _merged)
            {
                other.Complete(result);
            }
        }
    }
}
