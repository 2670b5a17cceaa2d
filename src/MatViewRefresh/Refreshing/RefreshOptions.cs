namespace MatViewRefresh;

/// <summary>Per-call settings of a refresh. Unset values come from <see cref="MatViewRefreshOptions"/>.</summary>
public sealed record RefreshOptions
{
    /// <summary>The shared default: every value from <see cref="MatViewRefreshOptions"/>.</summary>
    public static RefreshOptions Default { get; } = new();

    /// <summary>How to refresh. <value>The default is <see cref="MatViewRefreshOptions.DefaultMode"/>.</value></summary>
    public RefreshMode? Mode { get; init; }

    /// <summary>
    /// When another refresh of the same view is running (on any instance), return at once with
    /// <see cref="RefreshOutcome.Coalesced"/> instead of waiting for it.
    /// <value>The default is <see langword="false"/>: wait, bounded by the lock timeout.</value>
    /// </summary>
    public bool SkipIfBusy { get; init; }

    /// <summary>The <c>lock_timeout</c> of the refresh transaction. <value>The default is <see cref="MatViewRefreshOptions.LockTimeout"/>.</value></summary>
    public TimeSpan? LockTimeout { get; init; }

    /// <summary>The <c>statement_timeout</c> of the refresh transaction. <value>The default is <see cref="MatViewRefreshOptions.StatementTimeout"/>.</value></summary>
    public TimeSpan? StatementTimeout { get; init; }

    /// <summary>How many independent views a batch refreshes at once. <value>The default is <see cref="MatViewRefreshOptions.MaxParallelism"/>.</value></summary>
    public int? MaxParallelism { get; init; }

    /// <summary>How a window target (<see cref="RefreshTarget.Window"/>) is refreshed; ignored for views and functions. <value>The default is <see cref="WindowStrategy.Smart"/>.</value></summary>
    public WindowStrategy? Strategy { get; init; }

    /// <summary>
    /// How many local days an incremental window refresh replaces, today included (2: yesterday and today), from 1 to 36,600;
    /// ignored for views and functions.
    /// <value>The default is 2.</value>
    /// </summary>
    public int? Days { get; init; }

    /// <summary>
    /// Exactly which local days an incremental window refresh replaces, instead of the last <see cref="Days"/>: each range's
    /// days, both ends inclusive, in <see cref="TimeZone"/>. Overlapping and adjacent ranges are merged; each run of days is
    /// deleted and recomputed from the query (<c>@from</c> = its first day, <c>@to</c> = the day after its last), all in one
    /// transaction under the target's lock, logged with a mode such as <c>incremental (4 days: 2026-03-01..03, 2026-03-07)</c>.
    /// Only with <see cref="WindowStrategy.Incremental"/> (or no strategy); not with <see cref="Days"/>; at least one range.
    /// Ignored for views and functions.
    /// <value>The default is <see langword="null"/>: the last <see cref="Days"/> days.</value>
    /// </summary>
    public IReadOnlyList<DayRange>? DayRanges { get; init; }

    /// <summary>
    /// The IANA time zone whose local midnights bound a window refresh's days (for example <c>America/Chicago</c>); ignored for views and functions.
    /// <value>The default is <c>UTC</c>.</value>
    /// </summary>
    public string? TimeZone { get; init; }

    /// <summary>
    /// For <see cref="WindowStrategy.Smart"/>: a full refresh runs when the history holds no successful full refresh of the target more
    /// recent than this. <value>The default is 1 day.</value>
    /// </summary>
    public TimeSpan? FullRefreshAfter { get; init; }

    /// <summary>What started the refresh, recorded in the history (for example <c>manual</c>, <c>schedule</c>, <c>ingest</c>). <value>The default is <c>manual</c>.</value></summary>
    public string Trigger { get; init; } = "manual";
}
