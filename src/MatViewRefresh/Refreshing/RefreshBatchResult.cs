namespace MatViewRefresh;

/// <summary>Overall status of a batch.</summary>
public enum RefreshBatchStatus
{
    /// <summary>Every view was refreshed (or coalesced into a refresh already running).</summary>
    Success = 0,

    /// <summary>Some views were refreshed and some failed or were skipped.</summary>
    PartialSuccess = 1,

    /// <summary>No view was refreshed.</summary>
    Failed = 2,
}

/// <summary>The result of <see cref="IMaterializedViewRefresher.RefreshManyAsync"/>.</summary>
public sealed record RefreshBatchResult
{
    /// <summary>Overall status.</summary>
    public required RefreshBatchStatus Status { get; init; }

    /// <summary>One result per planned view, in plan order.</summary>
    public required IReadOnlyList<RefreshResult> Results { get; init; }

    /// <summary>Total wall time of the batch.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>
    /// Why the batch could not start (the catalog could not be read, transient errors retried first); then
    /// <see cref="Status"/> is <see cref="RefreshBatchStatus.Failed"/> and <see cref="Results"/> is empty.
    /// <see langword="null"/> when the batch ran.
    /// </summary>
    public RefreshError? Error { get; init; }

    /// <summary>The views whose refresh failed.</summary>
    public IReadOnlyList<QualifiedName> FailedViews =>
        [.. Results.Where(r => r.Outcome == RefreshOutcome.Failed).Select(r => r.Target.Name)];

    /// <summary>The views not attempted because something they depend on failed.</summary>
    public IReadOnlyList<QualifiedName> SkippedViews =>
        [.. Results.Where(r => r.Outcome == RefreshOutcome.Skipped).Select(r => r.Target.Name)];

    internal static RefreshBatchStatus StatusOf(IReadOnlyCollection<RefreshResult> results)
    {
        var good = results.Count(r => r.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Coalesced);
        if (good == results.Count)
        {
            return RefreshBatchStatus.Success;
        }

        return good == 0 ? RefreshBatchStatus.Failed : RefreshBatchStatus.PartialSuccess;
    }
}
