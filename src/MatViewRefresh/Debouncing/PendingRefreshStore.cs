using System.Collections.Concurrent;

namespace MatViewRefresh;

/// <summary>
/// Where the debouncer keeps per-key state. The seam a durable, PostgreSQL-backed store (requests enqueued in the
/// caller's own transaction) will implement; today's store is in memory.
/// </summary>
internal interface IPendingRefreshStore
{
    /// <summary>The key's entry, created when missing.</summary>
    DebounceEntry GetOrAdd(string key);

    /// <summary>Removes exactly this entry (not a newer one for the same key).</summary>
    void Remove(DebounceEntry entry);

    /// <summary>Keys with pending or running work, or run within the last MinInterval.</summary>
    int Count { get; }

    /// <summary>A snapshot of the entries.</summary>
    IReadOnlyList<DebounceEntry> Entries { get; }
}

internal sealed class InMemoryPendingRefreshStore : IPendingRefreshStore
{
    private readonly ConcurrentDictionary<string, DebounceEntry> _entries = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    public IReadOnlyList<DebounceEntry> Entries => [.. _entries.Values];

    public DebounceEntry GetOrAdd(string key) =>
        _entries.TryGetValue(key, out var entry) ? entry : _entries.GetOrAdd(key, static k => new DebounceEntry(k));

    public void Remove(DebounceEntry entry) => _entries.TryRemove(new KeyValuePair<string, DebounceEntry>(entry.Key, entry));
}

/// <summary>
/// The state of one coalescing key, guarded by locking the entry — except that a request joining a pending run
/// only reads <see cref="Pending"/> and pushes <see cref="DueTicks"/> with a compare-and-swap (the hot path).
/// Times are UTC ticks.
/// </summary>
internal sealed class DebounceEntry(string key)
{
    public const long None = long.MinValue;

    public string Key { get; } = key;

    public RefreshTarget? Target;

    /// <summary>Requests not yet covered by a started run.</summary>
    public volatile PendingRun? Pending;

    /// <summary>The run in progress.</summary>
    public PendingRun? Running;

    public long FirstRequestTicks;
    public long DueTicks;
    public long LastRunStartTicks = None;

    /// <summary>The pending run is waiting out a failure backoff: requests join it but do not move it.</summary>
    public volatile bool RetryWait;

    public ITimer? Timer;

    /// <summary>Forgotten: a request that finds it must take a new entry.</summary>
    public volatile bool Removed;
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
