namespace MatViewRefresh;

/// <summary>What a <see cref="RefreshCommand"/> does.</summary>
public enum RefreshCommandKind
{
    /// <summary>Lock the target, refresh it, and write the refresh log and history — one transaction.</summary>
    Refresh = 0,

    /// <summary>Record a failed refresh in the log and history (a second, short transaction).</summary>
    RecordFailure = 1,
}

/// <summary>One transaction for an <see cref="IRefreshExecutor"/>: what it is for, and the exact SQL the default executor sends.</summary>
public sealed record RefreshCommand
{
    /// <summary>What the command does.</summary>
    public required RefreshCommandKind Kind { get; init; }

    /// <summary>The target refreshed.</summary>
    public required RefreshTarget Target { get; init; }

    /// <summary>The mode run: <see cref="RefreshMode.Full"/> or <see cref="RefreshMode.Concurrent"/>; <see langword="null"/> for a function target.</summary>
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
/// <param name="RefreshedAt">When the refresh was recorded as done.</param>
/// <param name="ServerDuration">How long the <c>REFRESH</c> took on the server, lock wait excluded.</param>
/// <param name="RowCount">Rows in the view after the refresh, when counted.</param>
public sealed record RefreshExecution(DateTimeOffset? RefreshedAt, TimeSpan? ServerDuration, long? RowCount)
{
    /// <summary>An execution that reported nothing.</summary>
    public static RefreshExecution Empty { get; } = new(null, null, null);
}
