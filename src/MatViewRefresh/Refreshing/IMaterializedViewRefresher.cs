namespace MatViewRefresh;

/// <summary>Refreshes PostgreSQL materialized views, one or many, in dependency order.</summary>
/// <remarks>
/// Every refresh runs in one transaction that takes a transaction-level advisory lock on the view
/// (so one refresh per view runs at a time across every process), sets <c>lock_timeout</c> and
/// <c>statement_timeout</c>, refreshes, and writes the refresh log and history — in one round trip.
/// Transient failures are retried; failures are returned in the result, not thrown.
/// </remarks>
public interface IMaterializedViewRefresher
{
    /// <summary>Refreshes one materialized view.</summary>
    /// <param name="target">The view.</param>
    /// <param name="options">Per-call settings; <see langword="null"/> for the configured defaults.</param>
    /// <param name="cancellationToken">Cancels the refresh, stopping the statement on the server.</param>
    /// <returns>What happened; a failed refresh is a result with <see cref="RefreshResult.Error"/>, not an exception.</returns>
    /// <exception cref="MaterializedViewNotFoundException">The name does not resolve to a materialized view.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Refreshes the selected views in dependency order, independent ones in parallel up to
    /// <see cref="RefreshOptions.MaxParallelism"/>. When a view fails, the views depending on it are
    /// skipped rather than refreshed from stale input.
    /// </summary>
    /// <exception cref="MaterializedViewNotFoundException">A listed name does not resolve to a materialized view; nothing was refreshed.</exception>
    /// <exception cref="ArgumentException">A listed schema does not exist; nothing was refreshed.</exception>
    Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Returns the ordered plan <see cref="RefreshManyAsync"/> would run, without refreshing anything.</summary>
    /// <exception cref="MaterializedViewNotFoundException">A listed name does not resolve to a materialized view.</exception>
    Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default);
}
