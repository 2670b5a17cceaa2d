namespace MatViewRefresh;

/// <summary>
/// Change capture: triggers on a target's base tables that request a refresh of the target (a row in the schema's
/// <c>refresh_requests</c> table, in the writer's own transaction) whenever a statement changes them — whoever writes,
/// with or without this library. Workers of the durable queue run the requested refreshes.
/// </summary>
public interface IRefreshWatcher
{
    /// <summary>
    /// Finds the target's base tables and installs the capture triggers on them: statement-level <c>AFTER INSERT</c>,
    /// <c>AFTER UPDATE</c> and <c>AFTER DELETE</c> triggers reading the statement's transition tables, and an
    /// <c>AFTER TRUNCATE</c> trigger (a full refresh). Idempotent: watching again re-reads the base tables (a view redefined
    /// since) and replaces the watch.
    /// </summary>
    /// <remarks>
    /// Base tables are found through <c>pg_depend</c>, as PostgreSQL records what a view reads: through views, materialized
    /// views and functions with a SQL-standard body (<c>RETURN …</c>, <c>BEGIN ATOMIC</c>); a plpgsql function's reads are
    /// not recorded. A window target's query is compiled into a temporary view (rolled back) to read its dependencies. For a
    /// window target, a base table that has the target's date column (as <c>date</c>, <c>timestamp</c> or
    /// <c>timestamptz</c>) requests exactly the local days its statements changed; other tables request a refresh without days.
    /// Triggers on a partitioned table fire for statements on the partitioned table, not for statements naming a partition.
    /// The requests are run by the durable worker (<see cref="DurableRefreshOptions.Enabled"/>) of any instance that can
    /// resolve the target: a watched window or function target is registered with this instance's <see cref="IRefreshQueue"/>
    /// (with <see cref="RefreshOptions.TimeZone"/> = <paramref name="timeZone"/>) unless the app registered it already.
    /// </remarks>
    /// <param name="target">A materialized view, a window target, or a function with a SQL-standard body.</param>
    /// <param name="timeZone">
    /// The IANA time zone of a window target's local days, for base-table columns of type <c>timestamptz</c>; the same as
    /// the target's <see cref="RefreshOptions.TimeZone"/>. <value>The default is <c>UTC</c>.</value>
    /// </param>
    /// <param name="cancellationToken">Cancels the call (the transaction rolls back).</param>
    /// <returns>The watch as installed.</returns>
    /// <exception cref="ArgumentException">The time zone is not known; the message names it.</exception>
    /// <exception cref="InvalidOperationException">The target, or its window table, does not exist, or reads no base table PostgreSQL records; the message names it.</exception>
    Task<RefreshWatch> WatchAsync(RefreshTarget target, string? timeZone = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stops watching the target: its watch rows are deleted, and the capture triggers of a table no other target watches
    /// are dropped. Idempotent. Requests already written stay in the queue.
    /// </summary>
    /// <returns><see langword="true"/> when the target was watched.</returns>
    Task<bool> UnwatchAsync(RefreshTarget target, CancellationToken cancellationToken = default);

    /// <summary>Every watch, by target, with its tables and whether their triggers are in place.</summary>
    Task<IReadOnlyList<RefreshWatch>> ListAsync(CancellationToken cancellationToken = default);
}

/// <summary>A watched target and the base tables whose changes request its refresh.</summary>
public sealed record RefreshWatch
{
    /// <summary>The target as written to the requests (<see cref="RefreshTarget.ToString"/>).</summary>
    public required string Target { get; init; }

    /// <summary>The watched base tables, by schema and name.</summary>
    public required IReadOnlyList<WatchedTable> Tables { get; init; }
}

/// <summary>One base table of a <see cref="RefreshWatch"/>.</summary>
public sealed record WatchedTable
{
    /// <summary>The table.</summary>
    public required QualifiedName Table { get; init; }

    /// <summary>The column whose local days a statement's requests carry; <see langword="null"/>: requests carry no days.</summary>
    public string? DayColumn { get; init; }

    /// <summary>The IANA time zone of the local days, for a <c>timestamptz</c> day column; <see langword="null"/> otherwise.</summary>
    public string? TimeZone { get; init; }

    /// <summary>Whether all four capture triggers are on the table (<see langword="false"/>: dropped by hand, or the table re-created; watch again).</summary>
    public bool TriggersInstalled { get; init; }
}
