using Polly;

namespace MatViewRefresh;

/// <summary>Settings of MatViewRefresh, bound from the <c>MatViewRefresh</c> configuration section or set in code.</summary>
public sealed class MatViewRefreshOptions
{
    /// <summary>The configuration section the options bind from by default.</summary>
    public const string SectionName = "MatViewRefresh";

    /// <summary>
    /// Connection string used when no <see cref="Npgsql.NpgsqlDataSource"/> is registered in DI (and no
    /// <see cref="DataSourceKey"/> is set). The data source built from it logs through the app's <c>ILoggerFactory</c>.
    /// <value>The default is <see langword="null"/>: an <see cref="Npgsql.NpgsqlDataSource"/> must be registered.</value>
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The service key of a keyed <see cref="Npgsql.NpgsqlDataSource"/> to use, for apps with several databases
    /// (<c>services.AddKeyedSingleton("reporting", dataSource)</c>). When set, that data source must be registered.
    /// <value>The default is <see langword="null"/>: the unkeyed data source, else <see cref="ConnectionString"/>.</value>
    /// </summary>
    public string? DataSourceKey { get; set; }

    /// <summary>Schema of the refresh log tables. <value>The default is <c>matview_refresh</c>.</value></summary>
    public string Schema { get; set; } = "matview_refresh";

    /// <summary>Create the refresh log schema on first use (idempotent). <value>The default is <see langword="true"/>.</value></summary>
    public bool AutoCreateSchema { get; set; } = true;

    /// <summary>
    /// Schema of names written without one (<c>RefreshTarget.View("daily_totals")</c>, <c>RefreshSelection.Views("daily_totals")</c>,
    /// <c>RefreshTarget.Function("refresh_user")</c>). Names are not resolved through the connection's <c>search_path</c>: the
    /// log, the lock key and the history must name one object whatever connection runs the refresh.
    /// <value>The default is <c>public</c>.</value>
    /// </summary>
    public string DefaultSchema { get; set; } = "public";

    /// <summary>Mode when a call does not choose one. <value>The default is <see cref="RefreshMode.Auto"/>.</value></summary>
    public RefreshMode DefaultMode { get; set; } = RefreshMode.Auto;

    /// <summary>
    /// <c>lock_timeout</c> of a refresh: how long it waits for the view's lock, or for another
    /// instance's refresh of the same view. <see cref="TimeSpan.Zero"/> waits forever.
    /// <value>The default is 30 seconds.</value>
    /// </summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>statement_timeout</c> of a refresh. <see cref="TimeSpan.Zero"/> means no limit. <value>The default is <see cref="TimeSpan.Zero"/>.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan StatementTimeout { get; set; } = TimeSpan.Zero;

    /// <summary>How many independent views a batch refreshes at once. <value>The default is 1.</value></summary>
    [SettingRange(1, 64)]
    public int MaxParallelism { get; set; } = 1;

    /// <summary>Retries after a transient failure (connection loss, serialization failure, deadlock, lock timeout, server shutdown). 0 turns retries off. <value>The default is 3.</value></summary>
    [SettingRange(0, 100)]
    public int MaxRetryAttempts { get; set; } = 3;

    /// <summary>Delay before the first retry; later retries back off exponentially with jitter. <value>The default is 1 second.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between two retries. <value>The default is 30 seconds.</value></summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of one attempt (client side; the statement is cancelled on the server). <see cref="TimeSpan.Zero"/> means none. <value>The default is <see cref="TimeSpan.Zero"/>.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.Zero;

    /// <summary>How long history rows are kept. <value>The default is 30 days.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:01", "36500.00:00:00")]
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Refreshes up to this long are rated <see cref="RefreshRating.Fast"/>. <value>The default is 1000 ms.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00.001", "365.00:00:00")]
    public TimeSpan FastThreshold { get; set; } = TimeSpan.FromMilliseconds(1000);

    /// <summary>Refreshes longer than this are rated <see cref="RefreshRating.Slow"/>. <value>The default is 5000 ms.</value></summary>
    public TimeSpan SlowThreshold { get; set; } = TimeSpan.FromMilliseconds(5000);

    /// <summary>
    /// How long the catalog check of a function target (it exists and takes the given parameter names) is reused.
    /// Views are never cached: the refresh decides their mode from the catalog in its own transaction.
    /// <value>The default is 1 minute.</value>
    /// </summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan CatalogCacheDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Prepare the refresh statement on each physical connection (Npgsql keeps it prepared across pool rentals), so later
    /// refreshes skip parsing and planning on the server. Turn off behind PgBouncer older than 1.21 in transaction mode.
    /// <value>The default is <see langword="true"/>.</value>
    /// </summary>
    public bool PrepareStatements { get; set; } = true;

    /// <summary>Count the view's rows after each refresh (a full scan) and record them in the log. <value>The default is <see langword="false"/>.</value></summary>
    public bool RecordRowCount { get; set; }

    /// <summary>Settings of refresh-on-ingest (<see cref="IRefreshDebouncer"/>), section <c>MatViewRefresh:Debounce</c>.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public RefreshDebounceOptions Debounce { get; set; } = new();

    /// <summary>Settings of durable refresh requests (<see cref="IRefreshQueue"/>) and their worker, section <c>MatViewRefresh:Durable</c>.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public DurableRefreshOptions Durable { get; set; } = new();

    /// <summary>
    /// Schedules of <see cref="IRefreshScheduler"/> by name, section <c>MatViewRefresh:Schedules:&lt;name&gt;</c>
    /// (<c>MatViewRefresh:Schedules:nightly:Cron</c>). The name is the run's trigger in the history.
    /// <value>The default is empty: no schedules.</value>
    /// </summary>
    public IDictionary<string, RefreshScheduleOptions> Schedules { get; set; } = new Dictionary<string, RefreshScheduleOptions>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Targets whose base tables are watched (<see cref="IRefreshWatcher"/>), installed when the host starts, section
    /// <c>MatViewRefresh:Watch</c> (<c>MatViewRefresh:Watch:Views:0</c>). <value>The default is empty: nothing watched.</value>
    /// </summary>
    public RefreshWatchOptions Watch { get; set; } = new();

    /// <summary>
    /// Start <see cref="IRefreshScheduler"/> with the host. Set to <see langword="false"/> to start it yourself
    /// (<see cref="IRefreshScheduler.StartAsync"/>). <value>The default is <see langword="true"/>.</value>
    /// </summary>
    public bool StartScheduler { get; set; } = true;

    /// <summary>
    /// Extends the resilience pipeline around each refresh attempt. Called after the default retry and
    /// per-attempt timeout are added (set <see cref="MaxRetryAttempts"/> to 0 and leave
    /// <see cref="AttemptTimeout"/> at zero to replace them with your own strategies).
    /// <value>The default is <see langword="null"/>.</value>
    /// </summary>
    public Action<ResiliencePipelineBuilder>? ConfigureResilience { get; set; }

    /// <summary>Source of jitter for retry delays, in [0, 1). Replace it to pin delays in tests. <value>The default is <see cref="Random.Shared"/>.</value></summary>
    public Func<double> Randomizer { get; set; } = Random.Shared.NextDouble;
}
