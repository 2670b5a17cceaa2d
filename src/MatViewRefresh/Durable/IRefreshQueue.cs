using Npgsql;

namespace MatViewRefresh;

/// <summary>
/// Durable refresh requests: a request is a row appended to <c>matview_refresh.refresh_requests</c> in the caller's own
/// transaction, committed with the data or not at all, and run by a worker in any instance (<see cref="DurableRefreshOptions.Enabled"/>).
/// </summary>
/// <remarks>
/// <para>
/// Why a separate interface rather than a method on <see cref="IRefreshDebouncer"/>: the debouncer is in-memory and
/// fire-and-forget (a ticket, a result task, no database round trip, nothing to roll back); a durable request is a database
/// write that takes part in the caller's transaction, can fail with it, and is run by whichever instance claims it, so no
/// ticket can be handed back. The two share the timing rules (settle delay, MaxWait, MinInterval) and the refresher.
/// </para>
/// <para>
/// Workers claim a target's pending rows (the ones committed when they claim), run one refresh for all of them through
/// <see cref="IMaterializedViewRefresher"/>, and delete exactly those rows when it succeeded; a request committed meanwhile
/// stays and causes one more run. A worker that dies releases its claim with its connection. Rows are append-only:
/// writers never update a shared row, so they never wait for each other.
/// </para>
/// <para>
/// The worker must turn the stored text back into a target: a view resolves from its name; a window or function target must
/// be known to the instance that runs it: <see cref="Register"/>ed at start, enqueued by this process (remembered, bounded),
/// or resolved by <see cref="DurableRefreshOptions.Resolver"/>. Requests no instance can resolve stay, and are reported once.
/// </para>
/// </remarks>
public interface IRefreshQueue
{
    /// <summary>Appends a request to refresh <paramref name="target"/> as configured, in <paramref name="transaction"/>.</summary>
    /// <param name="target">The view, function or window target.</param>
    /// <param name="transaction">The caller's open transaction: the request commits or rolls back with it.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">The transaction is completed, or the target is not valid; the message names it. Nothing was written.</exception>
    Task EnqueueAsync(RefreshTarget target, NpgsqlTransaction transaction, CancellationToken cancellationToken);

    /// <summary>
    /// Appends one request per target (as configured), in <paramref name="transaction"/>, in one round trip: for a batch that
    /// changed the data of many targets (a request per distinct target is enough).
    /// </summary>
    /// <param name="targets">The targets; none <see langword="null"/>.</param>
    /// <param name="transaction">The caller's open transaction: the requests commit or roll back with it.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">A target is <see langword="null"/> (the message gives its position) or the transaction is completed. Nothing was written.</exception>
    Task EnqueueAsync(IEnumerable<RefreshTarget> targets, NpgsqlTransaction transaction, CancellationToken cancellationToken);

    /// <summary>
    /// Appends a request on an open connection outside any explicit transaction: it commits at once. Call it only after the
    /// data it is about has committed: a worker may run (and delete) the request before a later commit of the data, and the
    /// change would then wait for the next request. Inside the data's own transaction, use the transaction overload.
    /// </summary>
    /// <param name="target">The view, function or window target.</param>
    /// <param name="connection">An open connection.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">The connection is not open, or the target is not valid; the message names it. Nothing was written.</exception>
    Task EnqueueAsync(RefreshTarget target, NpgsqlConnection connection, CancellationToken cancellationToken);

    /// <summary>Appends a request to refresh the local days <paramref name="firstDay"/> to <paramref name="lastDay"/> (inclusive) of a window target, in <paramref name="transaction"/>.</summary>
    /// <param name="target">A window target (<see cref="RefreshTarget.Window"/>).</param>
    /// <param name="firstDay">The first local day that changed.</param>
    /// <param name="lastDay">The last local day that changed; not before <paramref name="firstDay"/>.</param>
    /// <param name="transaction">The caller's open transaction.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">The target is not a window target, the days are reversed, the last day is <see cref="DateOnly.MaxValue"/>, or the transaction is completed; nothing was written.</exception>
    Task EnqueueDaysAsync(RefreshTarget target, DateOnly firstDay, DateOnly lastDay, NpgsqlTransaction transaction, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes <paramref name="target"/> runnable by this instance's worker, with <paramref name="options"/> for its runs (window days,
    /// time zone, mode). Register window and function targets in every instance that runs the worker; registering again replaces the options.
    /// </summary>
    /// <param name="target">The target.</param>
    /// <param name="options">Settings of its runs; <see langword="null"/> for the configured defaults. The trigger is always <see cref="DurableRefreshOptions.Trigger"/>.</param>
    void Register(RefreshTarget target, RefreshOptions? options = null);
}
