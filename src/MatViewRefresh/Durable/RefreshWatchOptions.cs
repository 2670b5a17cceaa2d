namespace MatViewRefresh;

/// <summary>
/// Targets watched from configuration (section <c>MatViewRefresh:Watch</c>): installed by a hosted service when the host
/// starts (see <see cref="IRefreshWatcher.WatchAsync"/>). Removing a target from here does not unwatch it: call
/// <see cref="IRefreshWatcher.UnwatchAsync"/>.
/// </summary>
public sealed class RefreshWatchOptions
{
    /// <summary>Materialized views to watch, as in SQL (<c>sales.mv_daily</c>). <value>The default is empty.</value></summary>
    public IList<string> Views { get; set; } = [];

    /// <summary>Window targets to watch (table, date column, query, as in a schedule). <value>The default is empty.</value></summary>
    public IList<RefreshScheduleWindow> Windows { get; set; } = [];

    /// <summary>The IANA time zone of the windows' local days. <value>The default is <c>UTC</c>.</value></summary>
    public string TimeZone { get; set; } = "UTC";
}
