namespace MatViewRefresh;

/// <summary>What a <see cref="RefreshCommand"/> does.</summary>
public enum RefreshCommandKind
{
    /// <summary>Lock the target, refresh it, and write the refresh log and history — one transaction.</summary>
    Refresh = 0,

    /// <summary>Record a failed refresh in the log and history (a second, short transaction).</summary>
    RecordFailure = 1,

    /// <summary>Delete history older than <see cref="MatViewRefreshOptions.HistoryRetention"/> (its own short transaction, after a success, at most hourly).</summary>
    PruneHistory = 2,
}

/// <summary>One transaction for an <see cref="IRefreshExecutor"/>: what it is for, and the exact SQL the default executor sends.</summary>
public sealed record RefreshCommand
{
    /// <summary>What the command does.</summary>
    public required RefreshCommandKind Kind { get; init; }

    /// <summary>The target refreshed.</summary>
    public required RefreshTarget Target { get; init; }

    /// <summary>
    /// The mode asked of the server for a view: <see cref="RefreshMode.Full"/>, <see cref="RefreshMode.Concurrent"/>, or
    /// <see cref="RefreshMode.Auto"/> (the server decides from the catalog in the same transaction and reports its choice
    /// in <see cref="RefreshExecution.Mode"/>); <see langword="null"/> for a function or window target and for commands that refresh nothing.
    /// </summary>
    public required RefreshMode? Mode { get; init; }

    /// <summary>The attempt number, from 1.</summary>
    public required int Attempt { get; init; }

    /// <summary>The 64-bit advisory lock key of the target.</summary>
    public required long LockKey { get; init; }

    /// <summary>Whether the command waits for a busy target (bounded by <see cref="LockTimeout"/>) or fails at once with SQLSTATE <c>MVR01</c>.</summary>
    public required bool WaitForLock { get; init; }

    /// <summary>The <c>lock_timeout</c> set for the transaction (zero: none).</summary>
    public required TimeSpan LockTimeout { get; init; }

    /// <summary>The <c>statement_timeout</c> set for the transaction (zero: none).</summary>
    public required TimeSpan StatementTimeout { get; init; }

    /// <summary>What started the refresh.</summary>
    public required string Trigger { get; init; }

    /// <summary>The SQL, in order; every value is a parameter.</summary>
    public required IReadOnlyList<RefreshStatement> Statements { get; init; }
}

/// <summary>One SQL statement with positional parameters (<c>$1</c>, <c>$2</c>, …).</summary>
/// <param name="CommandText">The SQL text; identifiers are already quoted.</param>
/// <param name="Parameters">The values of <c>$1</c>, <c>$2</c>, … in order.</param>
public sealed record RefreshStatement(string CommandText, IReadOnlyList<object?> Parameters)
{
    /// <inheritdoc />
    public override string ToString() => CommandText;
}

/// <summary>What a refresh transaction reported (database clock); all <see langword="null"/> when nothing was returned.</summary>
public sealed record RefreshExecution
{
    /// <summary>An execution that reported nothing.</summary>
    public static RefreshExecution Empty { get; } = new();

    /// <summary>
    /// What the refresh reflects: the database clock just before the refresh statement took its snapshot. Data committed
    /// before this instant is in the refreshed view; data committed after it may not be.
    /// </summary>
    public DateTimeOffset? DataAsOf { get; init; }

    /// <summary>When the refresh was recorded as done.</summary>
    public DateTimeOffset? RefreshedAt { get; init; }

    /// <summary>How long the refresh took on the server, lock wait excluded.</summary>
    public TimeSpan? ServerDuration { get; init; }

    /// <summary>Rows in the view after the refresh, when counted.</summary>
    public long? RowCount { get; init; }

    /// <summary>The mode the server ran (<see cref="RefreshMode.Full"/> or <see cref="RefreshMode.Concurrent"/>), for a view.</summary>
    public RefreshMode? Mode { get; init; }

    /// <summary>Why the server chose <see cref="Mode"/>, for a view; which strategy ran and why, for a window target.</summary>
    public string? ModeReason { get; init; }

    /// <summary>The strategy a window target ran (column <c>strategy</c>: <c>incremental</c> or <c>full</c>).</summary>
    public WindowStrategy? Strategy { get; init; }

    /// <summary>Rows a window refresh deleted (column <c>rows_deleted</c>).</summary>
    public long? RowsDeleted { get; init; }

    /// <summary>Rows a window refresh inserted (column <c>rows_inserted</c>).</summary>
    public long? RowsInserted { get; init; }
}
