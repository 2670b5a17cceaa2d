using Npgsql;
using Polly.Timeout;

namespace MatViewRefresh;

/// <summary>
/// Decides which refresh failures are worth retrying. We classify ourselves rather than trusting
/// <see cref="NpgsqlException.IsTransient"/>: Npgsql calls 55000 transient, but for
/// <c>REFRESH … CONCURRENTLY</c> it means "no usable unique index", which never heals by retrying.
/// </summary>
internal static class TransientErrors
{
    /// <summary>SQLSTATEs raised by our lock helper when the target is busy and the caller did not want to wait.</summary>
    public const string TargetBusy = "MVR01";

    /// <summary>SQLSTATE raised by <c>refresh_view</c> when the name is not a materialized view (any more).</summary>
    public const string ViewMissing = "MVR02";

    private static readonly HashSet<string> TransientStates = new(StringComparer.Ordinal)
    {
        "40001", // serialization_failure
        "40P01", // deadlock_detected
        "55P03", // lock_not_available (lock_timeout)
        "57P01", // admin_shutdown (pg_terminate_backend, server restart)
        "57P02", // crash_shutdown
        "57P03", // cannot_connect_now (starting up)
        "53300", // too_many_connections
        "53400", // configuration_limit_exceeded
        "08000", "08003", "08006", "08001", "08004", // connection exceptions
    };

    public static bool IsTransient(Exception exception) => exception switch
    {
        TimeoutRejectedException => true, // our per-attempt timeout
        PostgresException pg => TransientStates.Contains(pg.SqlState),
        NpgsqlException { InnerException: TimeoutException } => true,
        NpgsqlException npgsql => npgsql.InnerException is IOException or System.Net.Sockets.SocketException || npgsql.IsTransient,
        _ => false,
    };

    /// <summary>
    /// SQLSTATEs with which PostgreSQL refuses <c>REFRESH … CONCURRENTLY</c>: 55000 (no usable unique index — but also
    /// "materialized view … has not been populated" for a view it reads) and 0A000 (the view itself is not populated).
    /// Which one it was is decided from the view's own catalog state, never from the message text (it is translated).
    /// </summary>
    public static bool MayBeConcurrentlyRefused(Exception exception) =>
        exception is PostgresException { SqlState: "55000" or "0A000" };

    /// <summary>Why the view's own catalog state refuses <c>CONCURRENTLY</c>, or <see langword="null"/> when it does not.</summary>
    public static string? ConcurrentlyRefusedBecause(MatViewInfo? view, string sqlState) =>
        view is null ? null
        : !view.IsPopulated ? $"{ModeDecision.NotPopulated} ({sqlState})"
        : !view.HasUsableUniqueIndex ? $"{ModeDecision.NoUniqueIndex} ({sqlState})"
        : null;

    /// <summary>
    /// A refresh failed on a missing object of the log schema (42P01 table, 3F000 schema, 42883 function): the log was
    /// damaged (dropped by hand, restored without it). Re-creating the schema heals it.
    /// </summary>
    /// <remarks>
    /// Only the message is read, where PostgreSQL names the missing object (<c>relation "matview_refresh.refresh_history"</c>,
    /// <c>function matview_refresh.refresh_view(…)</c>, <c>schema "matview_refresh"</c>). Not the context: every error of a
    /// refresh, the view's own included, happens inside <c>matview_refresh.refresh_view</c>.
    /// </remarks>
    public static bool IsMissingLogObject(Exception exception, string logSchema) =>
        exception is PostgresException { SqlState: "42P01" or "3F000" or "42883" } pg
        && (pg.MessageText.Contains(logSchema + ".", StringComparison.Ordinal) || pg.MessageText.Contains('"' + logSchema + '"', StringComparison.Ordinal));

    /// <summary>Whether the statement that failed was <c>REFRESH … CONCURRENTLY</c> (read from the error's context: the statement text is never translated).</summary>
    public static bool FailedConcurrently(Exception exception) =>
        exception is PostgresException { Where: { } where } && where.Contains("REFRESH MATERIALIZED VIEW CONCURRENTLY", StringComparison.Ordinal);

    public static RefreshError ToError(Exception exception) => exception switch
    {
        PostgresException pg => new RefreshError(pg.SqlState, pg.MessageText + (pg.Hint is null ? string.Empty : " " + pg.Hint), pg),
        TimeoutRejectedException t => new RefreshError(null, "The refresh attempt timed out: " + t.Message, t),
        _ => new RefreshError(null, exception.Message, exception),
    };
}
