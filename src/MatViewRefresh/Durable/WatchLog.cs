using Microsoft.Extensions.Logging;

namespace MatViewRefresh;

/// <summary>Log messages of change capture (event ids 5100–5199).</summary>
internal static partial class WatchLog
{
    [LoggerMessage(MatViewRefreshEventIds.WatchInstalled, LogLevel.Information, "Watching {Target}: capture triggers on {Tables}")]
    public static partial void WatchInstalled(ILogger logger, string target, string tables);

    [LoggerMessage(MatViewRefreshEventIds.WatchRemoved, LogLevel.Information, "No longer watching {Target}")]
    public static partial void WatchRemoved(ILogger logger, string target);

    [LoggerMessage(MatViewRefreshEventIds.WatchFailed, LogLevel.Error, "Could not watch {Target} from configuration: {ErrorMessage}")]
    public static partial void WatchFailed(ILogger logger, Exception exception, string target, string errorMessage);
}
