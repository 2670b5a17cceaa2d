using System.Text.Json.Serialization;

namespace MatViewRefresh.AspNetCore;

// The JSON bodies of the endpoints (snake_case through Json.Options; the names follow seed 003's examples).

internal sealed record ViewResultBody(
    bool Success,
    string Outcome,
    string RequestedMode,
    string? Mode,
    string? ModeReason,
    [property: JsonConverter(typeof(FloatConverter))] double DurationMs,
    int Attempts,
    DateTimeOffset? DataAsOf,
    DateTimeOffset? RefreshedAt,
    string? Error,
    string? ErrorSqlState);

/// <summary><c>results</c> is seed 003's view → succeeded map (booleans); <c>details</c> has each view's outcome, mode and why, duration.</summary>
internal sealed record RefreshBody(
    string Status,
    string Message,
    IReadOnlyDictionary<string, bool> Results,
    IReadOnlyDictionary<string, ViewResultBody> Details,
    [property: JsonConverter(typeof(FloatConverter))] double DurationMs)
{
    /// <summary>Only on partial success, as in seed 003.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? FailedViews { get; init; }

    /// <summary>Why the batch could not start, when it could not.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Detail { get; init; }
}

internal sealed record ScheduleBody(
    string Name,
    bool Enabled,
    bool Running,
    [property: JsonConverter(typeof(FloatConverter))] double? LastRun,
    string? LastOutcome,
    [property: JsonConverter(typeof(FloatConverter))] double? LastDurationMs,
    string? LastError,
    [property: JsonConverter(typeof(FloatConverter))] double? NextRun,
    double? IntervalSeconds,
    string? Cron,
    string TimeZone,
    long SuccessCount,
    long FailureCount,
    long SkippedCount,
    DateTimeOffset? DataAsOf);

internal sealed record AutomatedStatusBody(
    bool Enabled,
    bool Running,
    [property: JsonConverter(typeof(FloatConverter))] double? LastRun,
    [property: JsonConverter(typeof(FloatConverter))] double? NextRun,
    double? IntervalSeconds,
    string? Cron,
    string? TimeZone,
    long SuccessCount,
    long FailureCount,
    long SkippedCount,
    IReadOnlyList<ScheduleBody> Schedules);

internal sealed record StatusBody(
    string Status,
    [property: JsonConverter(typeof(FloatConverter))] double? LastRefresh,
    DateTimeOffset? LastRefreshAt,
    AutomatedStatusBody AutomatedRefreshStatus,
    string Message)
{
    /// <summary>The host's own fields (<see cref="MatViewRefreshEndpointOptions.StatusFields"/>), written at the top level.</summary>
    [JsonExtensionData]
    public IDictionary<string, object?>? Extra { get; init; }
}

internal sealed record AutomatedConfigBody(double? IntervalSeconds, string? Cron, string? TimeZone, bool ConcurrentRefresh, IReadOnlyList<string> Views, IReadOnlyList<string> Schedules);

internal sealed record StartBody(string Status, string Message, AutomatedConfigBody Config);

internal sealed record FinalMetricsBody(long TotalRefreshes, long SuccessfulRefreshes, long FailedRefreshes, long SkippedCount, [property: JsonConverter(typeof(FloatConverter))] double AverageDurationMs, double UptimeSeconds);

internal sealed record StopBody(string Status, string Message, FinalMetricsBody FinalMetrics);

internal sealed record ForceResultBody(
    [property: JsonConverter(typeof(FloatConverter))] double DurationMs,
    int ViewsRefreshed,
    bool Success,
    IReadOnlyDictionary<string, bool> Results,
    IReadOnlyDictionary<string, ViewResultBody> Details);

internal sealed record ForceBody(string Status, ForceResultBody Result, string Message)
{
    /// <summary>Seed 003's error field, when nothing was refreshed (the answer is then a 500).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Detail { get; init; }
}

internal sealed record MetricBody(
    long Id,
    string ViewName,
    string Scope,
    [property: JsonConverter(typeof(FloatConverter))] double RefreshDurationMs,
    bool Success,
    DateTimeOffset CreatedAt,
    string? ErrorMessage,
    string? ErrorSqlState,
    string? Mode,
    string Trigger,
    int Attempts,
    DateTimeOffset? DataAsOf);

internal sealed record SummaryBody(
    long TotalCount,
    long SuccessCount,
    long FailureCount,
    [property: JsonConverter(typeof(FloatConverter))] double? SuccessRate,
    [property: JsonConverter(typeof(FloatConverter))] double? AverageDurationMs,
    [property: JsonPropertyName("p50_duration_ms")] [property: JsonConverter(typeof(FloatConverter))] double? P50DurationMs,
    [property: JsonPropertyName("p95_duration_ms")] [property: JsonConverter(typeof(FloatConverter))] double? P95DurationMs,
    [property: JsonPropertyName("p99_duration_ms")] [property: JsonConverter(typeof(FloatConverter))] double? P99DurationMs,
    [property: JsonConverter(typeof(FloatConverter))] double? MinDurationMs,
    [property: JsonConverter(typeof(FloatConverter))] double? MaxDurationMs);

internal sealed record MetricsBody(string Status, IReadOnlyList<MetricBody> Metrics, SummaryBody Summary);

internal sealed record FreshnessBody(
    string View,
    string Kind,
    bool Refreshable,
    DateTimeOffset? DataAsOf,
    DateTimeOffset? RefreshedAt,
    double? DurationMs,
    double? AgeSeconds,
    string? Rating,
    bool Stale,
    string? Mode,
    long? RowCount,
    DateTimeOffset? LastAttemptAt,
    string? LastError,
    string? LastErrorSqlState);

internal sealed record FreshnessListBody(double StaleAfterSeconds, IReadOnlyList<FreshnessBody> Views);
