namespace MatViewRefresh;

/// <summary>Settings of <see cref="IRefreshDebouncer"/> (configuration section <c>MatViewRefresh:Debounce</c>).</summary>
public sealed class RefreshDebounceOptions
{
    /// <summary>The environment variable that turns debounced refreshes off without a code change (1, true, yes, on; any case).</summary>
    public const string DisableVariable = "MATVIEWREFRESH_DISABLE";

    /// <summary>
    /// Whether requests schedule refreshes. When <see langword="false"/> (or <c>MATVIEWREFRESH_DISABLE</c> is truthy when the
    /// debouncer is created), a request logs a skip and returns a skipped ticket. <value>The default is <see langword="true"/>.</value>
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Shortest settle delay between a request and its run. <value>The default is 1.5 seconds.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "1.00:00:00", Section = "MatViewRefresh:Debounce")]
    public TimeSpan DelayMin { get; set; } = TimeSpan.FromSeconds(1.5);

    /// <summary>Longest settle delay; each delay is drawn from [<see cref="DelayMin"/>, <see cref="DelayMax"/>]. <value>The default is 2 seconds.</value></summary>
    public TimeSpan DelayMax { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Further requests push a pending run back, but never past this long after the first pending request:
    /// a continuous stream of requests still gets runs. <value>The default is 30 seconds.</value>
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Successive runs of one key start at least this far apart; at most <see cref="MaxWait"/>. <value>The default is 20 seconds.</value></summary>
    public TimeSpan MinInterval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How many times a failed run is retried (with exponential backoff) before its ticket completes as failed. <value>The default is 5.</value></summary>
    [SettingRange(0, 1000, Section = "MatViewRefresh:Debounce")]
    public int MaxFailureRetries { get; set; } = 5;

    /// <summary>Delay before the first retry of a failed run; doubles with each further failure. <value>The default is 5 seconds.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "1.00:00:00", Section = "MatViewRefresh:Debounce")]
    public TimeSpan FailureRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest delay before retrying a failed run. <value>The default is 5 minutes.</value></summary>
    public TimeSpan FailureRetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How many debounced runs execute at once across all keys; the others wait their turn (a waiting run still counts
    /// as its key's run in progress). Each run holds a connection and a transaction, so this stays well below the
    /// connection pool (Npgsql's default Maximum Pool Size is 100) and leaves connections for the app itself; the
    /// shutdown flush respects it too. At least 1. <value>The default is 8.</value>
    /// </summary>
    [SettingRange(1, 1000, Section = "MatViewRefresh:Debounce")]
    public int MaxConcurrentRuns { get; set; } = 8;

    /// <summary>On host stop, pending refreshes are run at once; those not done within this time are reported in the log. <value>The default is 10 seconds.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00", "1.00:00:00", Section = "MatViewRefresh:Debounce")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The IANA time zone of <see cref="IRefreshDebouncer.LocalDay"/> when none is given. <value>The default is <c>America/Chicago</c>.</value></summary>
    public string DefaultTimeZone { get; set; } = "America/Chicago";

    /// <summary>The trigger recorded in the history for debounced runs. <value>The default is <c>debounce</c>.</value></summary>
    public string Trigger { get; set; } = "debounce";
}
