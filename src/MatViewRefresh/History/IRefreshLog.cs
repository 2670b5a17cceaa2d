namespace MatViewRefresh;

/// <summary>
/// When each target was last refreshed, how long it took, how stale it is, and the history of runs.
/// The log is written in the same transaction as the refresh, so the two never disagree.
/// </summary>
public interface IRefreshLog
{
    /// <summary>Creates the refresh log schema if it is missing (idempotent; also done on first use when <see cref="MatViewRefreshOptions.AutoCreateSchema"/> is on).</summary>
    Task EnsureSchemaAsync(CancellationToken cancellationToken = default);

    /// <summary>How fresh a target is, or <see langword="null"/> when it was never refreshed or attempted.</summary>
    /// <param name="target">The target.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<ViewFreshness?> GetFreshnessAsync(RefreshTarget target, CancellationToken cancellationToken = default);

    /// <summary>The most recent runs, newest first.</summary>
    /// <param name="limit">How many at most (1 to 10,000). The default is 100.</param>
    /// <param name="target">Only this target; <see langword="null"/> for all.</param>
    /// <param name="since">Only runs started at or after this instant.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is out of range.</exception>
    Task<IReadOnlyList<RefreshHistoryEntry>> GetHistoryAsync(int limit = 100, RefreshTarget? target = null, DateTimeOffset? since = null, CancellationToken cancellationToken = default);

    /// <summary>Counts, success rate and duration percentiles of the runs (computed in SQL).</summary>
    /// <param name="target">Only this target; <see langword="null"/> for all.</param>
    /// <param name="since">Only runs started at or after this instant.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<RefreshSummary> GetSummaryAsync(RefreshTarget? target = null, DateTimeOffset? since = null, CancellationToken cancellationToken = default);
}
