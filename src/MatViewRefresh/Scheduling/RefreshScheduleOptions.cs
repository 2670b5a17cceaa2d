namespace MatViewRefresh;

/// <summary>
/// One schedule of <see cref="IRefreshScheduler"/>: which materialized views it refreshes, how, and when. Bound from
/// <c>MatViewRefresh:Schedules:&lt;name&gt;</c>; set exactly one of <see cref="Interval"/> or <see cref="Cron"/>.
/// </summary>
public sealed class RefreshScheduleOptions
{
    /// <summary>Whether the schedule runs. A disabled schedule is validated and reported, never run. <value>The default is <see langword="true"/>.</value></summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Materialized views to refresh, named as in SQL (<c>sales.daily</c>). <value>The default is empty.</value></summary>
    public IList<string> Views { get; set; } = [];

    /// <summary>Schemas whose every materialized view is refreshed. <value>The default is empty.</value></summary>
    public IList<string> Schemas { get; set; } = [];

    /// <summary>
    /// Mart tables kept by date window (see <see cref="RefreshTarget.Window"/>) that each run refreshes after the views, one
    /// by one, with <see cref="Strategy"/>, <see cref="Days"/> and <see cref="FullRefreshAfter"/>; their days are local days
    /// of <see cref="TimeZone"/>. Bound from <c>Windows:0:Table</c>, <c>Windows:0:DateColumn</c>, <c>Windows:0:Query</c>.
    /// <value>The default is empty.</value>
    /// </summary>
    public IList<RefreshScheduleWindow> Windows { get; set; } = [];

    /// <summary>
    /// How the <see cref="Windows"/> are refreshed: <c>Smart</c>, <c>Incremental</c> or <c>Full</c> (see <see cref="WindowStrategy"/>).
    /// <value>The default is <c>Smart</c>.</value>
    /// </summary>
    public string Strategy { get; set; } = nameof(WindowStrategy.Smart);

    /// <summary>How many local days of <see cref="TimeZone"/> an incremental window refresh replaces, today included (1 to 36,600). <value>The default is 2.</value></summary>
    public int Days { get; set; } = 2;

    /// <summary>For the <c>Smart</c> strategy: a window is refreshed in full when its history holds no successful full refresh more recent than this. <value>The default is 1 day.</value></summary>
    public TimeSpan FullRefreshAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Also refresh every materialized view downstream of the selected ones. <value>The default is <see langword="false"/>.</value></summary>
    public bool IncludeDependents { get; set; }

    /// <summary>
    /// How the views are refreshed: <c>Auto</c>, <c>Full</c> or <c>Concurrent</c> (see <see cref="RefreshMode"/>); other
    /// strategies are rejected at start. <value>The default is <c>Auto</c>.</value>
    /// </summary>
    public string Mode { get; set; } = nameof(RefreshMode.Auto);

    /// <summary>
    /// Run every this long, on a grid aligned to the Unix epoch (so every instance agrees on the ticks whenever it started).
    /// <value>The default is <see langword="null"/>: set this or <see cref="Cron"/>.</value>
    /// </summary>
    public TimeSpan? Interval { get; set; }

    /// <summary>
    /// A 5-field cron expression (<c>*/2 6-22 * * *</c>) evaluated in <see cref="TimeZone"/>, daylight saving time included.
    /// <value>The default is <see langword="null"/>: set this or <see cref="Interval"/>.</value>
    /// </summary>
    public string? Cron { get; set; }

    /// <summary>The IANA time zone of <see cref="Cron"/>, <see cref="ActiveHours"/> and the local days of <see cref="Windows"/>. <value>The default is <c>UTC</c>.</value></summary>
    public string TimeZone { get; set; } = "UTC";

    /// <summary>
    /// Each run starts up to this long (at random) after its tick, to spread load; the tick itself, and so the claim
    /// across instances, does not move. Shorter than the interval. <value>The default is <see cref="TimeSpan.Zero"/>.</value>
    /// </summary>
    public TimeSpan Jitter { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Only ticks within these local hours of <see cref="TimeZone"/> run, written <c>HH:mm-HH:mm</c> (<c>06:00-22:00</c>;
    /// <c>22:00-06:00</c> spans midnight; the end is exclusive). <value>The default is <see langword="null"/>: all day.</value>
    /// </summary>
    public string? ActiveHours { get; set; }

    /// <summary>
    /// Runs made at start for a tick missed while no instance was running (0 or 1): at most one, however many were missed.
    /// <value>The default is 1.</value>
    /// </summary>
    public int MaxCatchUpRuns { get; set; } = 1;

    /// <summary>
    /// When the scheduler stops, how long it waits for this schedule's run in progress before cancelling it.
    /// <value>The default is 30 seconds.</value>
    /// </summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a run holds the schedule across instances: while it runs, a tick claimed by another instance is skipped
    /// (and counted); the hold is released when the run ends, or lapses after this long if the instance crashed. Set it
    /// above the longest run: a run outlasting its lease may overlap the next. <value>The default is 10 minutes.</value>
    /// </summary>
    public TimeSpan RunLease { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A timestamp column of the refreshed data, written <c>schema.view.column</c>
    /// (<c>sales.daily_totals.last_event_at</c>): after each run that refreshed something, the scheduler reads its newest
    /// value, and <see cref="RefreshScheduleStatus.DataAsOf"/> and <see cref="RefreshScheduleStatus.DataBehind"/> report it.
    /// <value>The default is <see langword="null"/>: no data freshness.</value>
    /// </summary>
    public string? DataTimestampColumn { get; set; }
}

/// <summary>A mart table kept by date window, refreshed by a schedule (see <see cref="RefreshTarget.Window"/>).</summary>
public sealed class RefreshScheduleWindow
{
    /// <summary>The mart table, as in SQL (<c>marts.daily_sales</c>). <value>The default is empty.</value></summary>
    public string Table { get; set; } = string.Empty;

    /// <summary>The table's <c>date</c>, <c>timestamptz</c> or <c>timestamp</c> column, exactly as stored. <value>The default is empty.</value></summary>
    public string DateColumn { get; set; } = string.Empty;

    /// <summary>The <c>SELECT</c> producing the table's rows for the days <c>[@from, @to)</c>. <value>The default is empty.</value></summary>
    public string Query { get; set; } = string.Empty;
}
