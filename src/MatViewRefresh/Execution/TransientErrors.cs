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

    /// <summary>The server refused <c>CONCURRENTLY</c> for a reason a full refresh does not have.</summary>
    public static bool IsConcurrentlyRefused(Exception exception, out string reason)
    {
        reason = exception switch
        {
            PostgresException { SqlState: "55000" } => "no unique index without WHERE on plain columns (55000)",
            PostgresException { SqlState: "0A000" } pg when pg.MessageText.Contains("not populated", StringComparison.OrdinalIgnoreCase) => "view is not populated (0A000)",
            _ => string.Empty,
        };
        return reason.Length > 0;
    }

    public static RefreshError ToError(Exception exception) => exception switch
    {
        PostgresException pg => new RefreshError(pg.SqlState, pg.MessageText + (pg.Hint is null ? string.Empty : " " + pg.Hint), pg),
        TimeoutRejectedException t => new RefreshError(null, "The refresh attempt timed out: " + t.Message, t),
        _ => new RefreshError(null, exception.Message, exception),
    };
}
