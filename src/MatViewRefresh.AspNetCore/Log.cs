using Microsoft.Extensions.Logging;

namespace MatViewRefresh.AspNetCore;

internal static partial class Log
{
    [LoggerMessage(MatViewRefreshEventIds.EndpointsAllowAnonymous, LogLevel.Warning,
        "The MatViewRefresh endpoints under {Prefix} are served without authorization (AllowAnonymous): anyone who can reach the app can refresh views and stop the scheduler")]
    public static partial void EndpointsAllowAnonymous(ILogger logger, string prefix);

    [LoggerMessage(MatViewRefreshEventIds.EndpointDatabaseUnavailable, LogLevel.Warning,
        "{Method} {Path} could not reach the database; answered 503: {ErrorMessage}")]
    public static partial void EndpointDatabaseUnavailable(ILogger logger, string method, string path, string errorMessage, Exception exception);

    [LoggerMessage(MatViewRefreshEventIds.HealthCheckDatabaseUnavailable, LogLevel.Warning,
        "The MatViewRefresh health check could not read the refresh log: {ErrorMessage}")]
    public static partial void HealthCheckDatabaseUnavailable(ILogger logger, string errorMessage, Exception exception);
}
