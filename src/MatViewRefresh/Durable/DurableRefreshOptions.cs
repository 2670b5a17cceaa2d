namespace MatViewRefresh;

/// <summary>
/// Settings of durable refresh requests (<see cref="IRefreshQueue"/>) and of the worker that runs them in this instance
/// (configuration section <c>MatViewRefresh:Durable</c>). The settle delay, MaxWait, MinInterval and failure backoff are the
/// debouncer's (<see cref="RefreshDebounceOptions.DelayMin"/>, <see cref="RefreshDebounceOptions.MaxWait"/>,
/// <see cref="RefreshDebounceOptions.MinInterval"/>, <see cref="RefreshDebounceOptions.FailureRetryDelay"/>,
/// <see cref="RefreshDebounceOptions.FailureRetryMaxDelay"/>): one set of timing rules for both paths.
/// </summary>
public sealed class DurableRefreshOptions
{
    /// <summary>
    /// Run the durable worker in this instance (a hosted service started with the host). <see cref="IRefreshQueue.EnqueueAsync(RefreshTarget, Npgsql.NpgsqlTransaction, CancellationToken)"/>
    /// writes requests whether or not it is on: any instance with the worker on runs them. <value>The default is <see langword="false"/>.</value>
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>How often the worker looks for due requests when nothing wakes it sooner. <value>The default is 1 second.</value></summary>
    [SettingRange(typeof(TimeSpan), "00:00:00.010", "01:00:00", Section = "MatViewRefresh:Durable")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Wake workers with <c>NOTIFY</c> for sub-second pickup: each enqueue also calls <c>pg_notify</c>, and workers <c>LISTEN</c>.
    /// Costs the writer: at commit, every notifying transaction takes one cluster-wide lock in turn (see the README's figures).
    /// <value>The default is <see langword="false"/>: polling only.</value>
    /// </summary>
    public bool ListenNotify { get; set; }

    /// <summary>
    /// How many durable runs this instance executes at once across all targets. A run of one target holds two connections (its
    /// claim and the refresh itself); a grouped run (<see cref="MaxTargetsPerRun"/>) holds one. <value>The default is 4.</value>
    /// </summary>
    [SettingRange(1, 256, Section = "MatViewRefresh:Durable")]
    public int MaxConcurrentRuns { get; set; } = 4;

    /// <summary>
    /// How many due function and window targets one run may claim and refresh together, in one transaction (views always run
    /// alone: a group holds its locks until it commits). Each target still takes its own lock and writes its own log and history
    /// row; a group commits all of its refreshes or none, and one that fails is run again one target at a time, so a failing
    /// target is isolated and backs off alone. Grouping is what lets a few workers keep thousands of small targets fresh
    /// (see the README's figures); 1 runs every target alone. Groups are used only with the default refresher and executor.
    /// <value>The default is 100.</value>
    /// </summary>
    [SettingRange(1, 10_000, Section = "MatViewRefresh:Durable")]
    public int MaxTargetsPerRun { get; set; } = 100;

    /// <summary>
    /// Divide the due targets between the instances whose worker is on: each lists only its share (a hash of the target, modulo
    /// the workers seen lately — noted in the <c>refresh_workers</c> table), plus other shares' targets once they are overdue by
    /// five poll intervals (at least 5 s), so a share whose worker died or stalled is still run. Without shares, busy instances
    /// offer their claims the same targets and find many just run or held by another. Turn it off where instances register
    /// different targets: a target in the share of an instance that cannot resolve it waits those 5 s for another.
    /// <value>The default is <see langword="true"/>.</value>
    /// </summary>
    public bool ShareTargets { get; set; } = true;

    /// <summary>The trigger recorded in the history for durable runs. <value>The default is <c>queue</c>.</value></summary>
    public string Trigger { get; set; } = "queue";

    /// <summary>
    /// Turns a request's <c>target</c> text into a target this instance can run, for function targets with many scopes
    /// (<c>marts.refresh_user(day_local=2025-11-08&amp;user_id=…)</c>) that cannot all be registered. Return <see langword="null"/> for
    /// text it does not know. Consulted after <see cref="IRefreshQueue.Register"/>ed targets and before the view fallback.
    /// <value>The default is <see langword="null"/>.</value>
    /// </summary>
    public Func<string, RefreshTarget?>? Resolver { get; set; }
}
