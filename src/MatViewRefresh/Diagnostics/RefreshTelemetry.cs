using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MatViewRefresh;

/// <summary>The library's <see cref="ActivitySource"/> (named <c>MatViewRefresh</c>) and the tags it and the metrics share.</summary>
internal static class RefreshTelemetry
{
    public const string Name = "MatViewRefresh";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static string ModeTag(RefreshMode? mode) => mode switch
    {
        RefreshMode.Full => "full",
        RefreshMode.Concurrent => "concurrent",
        RefreshMode.Auto => "auto",
        _ => "function",
    };

    /// <summary>The mode a result ran: <c>function</c> for a function target, <c>none</c> when nothing ran or the mode is unknown (a failed Auto refresh).</summary>
    public static string ResultModeTag(RefreshResult result) =>
        result.Target.Kind == RefreshTargetKind.Function ? "function"
        : result.Target.Kind == RefreshTargetKind.Window ? (result.StrategyUsed is { } strategy ? RefreshSql.StrategyTag(strategy) : "none")
        : result.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Failed && result.ModeUsed is { } mode ? ModeTag(mode)
        : "none";

    public static RefreshMode? ParseMode(string tag) => tag switch
    {
        "full" => RefreshMode.Full,
        "concurrent" => RefreshMode.Concurrent,
        "auto" => RefreshMode.Auto,
        _ => null,
    };

    public static string OutcomeTag(RefreshOutcome outcome) => outcome switch
    {
        RefreshOutcome.Succeeded => "succeeded",
        RefreshOutcome.Failed => "failed",
        RefreshOutcome.Coalesced => "coalesced",
        _ => "skipped",
    };
}

/// <summary>
/// The library's instruments, on a <see cref="Meter"/> named <c>MatViewRefresh</c> from the host's <see cref="IMeterFactory"/>.
/// Durations in seconds, as the OpenTelemetry semantic conventions ask.
/// </summary>
internal sealed class RefreshMetrics
{
    private readonly Counter<long> _refreshes;
    private readonly Histogram<double> _duration;

    public RefreshMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(RefreshTelemetry.Name);
        _refreshes = meter.CreateCounter<long>("matview_refresh.refreshes", unit: "{refresh}", description: "Refreshes by outcome.");
        _duration = meter.CreateHistogram<double>(
            "matview_refresh.refresh.duration",
            unit: "s",
            description: "Wall time of refreshes, attempts and retry delays included.",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] });
    }

    public void Record(RefreshResult result)
    {
        var tags = new TagList
        {
            { "matview_refresh.target", result.Target.LogName }, // the scope (a user, a day) would explode cardinality
            { "matview_refresh.outcome", RefreshTelemetry.OutcomeTag(result.Outcome) },
            { "matview_refresh.mode", RefreshTelemetry.ResultModeTag(result) },
        };
        _refreshes.Add(1, tags);
        if (result.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Failed)
        {
            _duration.Record(result.Duration.TotalSeconds, tags);
        }
    }
}
