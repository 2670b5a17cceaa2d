using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MatViewRefresh;

/// <summary>The library's <see cref="ActivitySource"/> and <see cref="Meter"/>, both named <c>MatViewRefresh</c>.</summary>
internal static class RefreshTelemetry
{
    public const string Name = "MatViewRefresh";

    public static readonly ActivitySource ActivitySource = new(Name);

    private static readonly Meter Meter = new(Name);

    private static readonly Counter<long> Refreshes = Meter.CreateCounter<long>(
        "matview_refresh.refreshes", unit: "{refresh}", description: "Refreshes by outcome.");

    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>(
        "matview_refresh.duration", unit: "ms", description: "Wall time of refreshes, attempts included.");

    public static void Record(RefreshResult result)
    {
        var tags = new TagList
        {
            { "matview_refresh.target", result.Target.LogName }, // the scope (a user, a day) would explode cardinality
            { "matview_refresh.outcome", OutcomeTag(result.Outcome) },
            { "matview_refresh.mode", result.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Failed ? ModeTag(result.ModeUsed) : "none" },
        };
        Refreshes.Add(1, tags);
        if (result.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Failed)
        {
            Duration.Record(result.Duration.TotalMilliseconds, tags);
        }
    }

    public static string ModeTag(RefreshMode? mode) => mode switch
    {
        RefreshMode.Full => "full",
        RefreshMode.Concurrent => "concurrent",
        RefreshMode.Auto => "auto",
        _ => "function",
    };

    private static string OutcomeTag(RefreshOutcome outcome) => outcome switch
    {
        RefreshOutcome.Succeeded => "succeeded",
        RefreshOutcome.Failed => "failed",
        RefreshOutcome.Coalesced => "coalesced",
        _ => "skipped",
    };
}
