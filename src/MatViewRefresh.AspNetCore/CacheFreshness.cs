using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace MatViewRefresh.AspNetCore;

/// <summary>
/// Freshness fields for an API response served from a materialized view (seed 002): <c>data_source</c>, and for cached data
/// <c>cache_refreshed_at</c> and <c>cache_refresh_duration_ms</c>. Get one with
/// <see cref="CacheFreshnessHttpContextExtensions.GetCacheFreshnessAsync"/> (which also sets <c>Last-Modified</c>), or
/// <see cref="RealTime"/> for data read from the base tables.
/// </summary>
public sealed record CacheFreshness
{
    /// <summary>The <c>data_source</c> of data served from a materialized view.</summary>
    public const string CachedSource = "cached";

    /// <summary>The <c>data_source</c> of data read from the base tables.</summary>
    public const string RealTimeSource = "real_time";

    /// <summary>Freshness of data read from the base tables: <c>data_source</c> is <c>real_time</c>, and no cache fields.</summary>
    public static CacheFreshness RealTime { get; } = new() { DataSource = RealTimeSource };

    /// <summary><c>cached</c> or <c>real_time</c>.</summary>
    [JsonPropertyName("data_source")]
    public required string DataSource { get; init; }

    /// <summary>When the view's last successful refresh finished; <see langword="null"/> for real-time data or a view never refreshed.</summary>
    [JsonPropertyName("cache_refreshed_at")]
    [JsonConverter(typeof(UtcTimestampConverter))]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? CacheRefreshedAt { get; init; }

    /// <summary>How long that refresh took, in whole milliseconds.</summary>
    [JsonPropertyName("cache_refresh_duration_ms")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? CacheRefreshDurationMs { get; init; }

    /// <summary>What the view's data reflects (see <see cref="ViewFreshness.DataAsOf"/>): the response's <c>Last-Modified</c>. Not serialized.</summary>
    [JsonIgnore]
    public DateTimeOffset? DataAsOf { get; init; }

    /// <summary>The fields of cached data from a refresh log entry (<see cref="IRefreshLog.GetFreshnessAsync"/>); <see langword="null"/> for a view never refreshed.</summary>
    /// <param name="freshness">The view's freshness.</param>
    public static CacheFreshness Cached(ViewFreshness? freshness) => new()
    {
        DataSource = CachedSource,
        CacheRefreshedAt = freshness?.RefreshedAt,
        CacheRefreshDurationMs = freshness?.Duration is { } d ? (long)Math.Round(d.TotalMilliseconds, MidpointRounding.AwayFromZero) : null,
        DataAsOf = freshness?.DataAsOf,
    };

    /// <summary>Adds the fields to a JSON object (replacing fields of the same names) and returns it.</summary>
    /// <param name="response">The response body.</param>
    public JsonObject AddTo(JsonObject response)
    {
        ArgumentNullException.ThrowIfNull(response);
        response["data_source"] = DataSource;
        if (CacheRefreshedAt is { } at)
        {
            response["cache_refreshed_at"] = UtcTimestampConverter.Format(at);
        }

        if (CacheRefreshDurationMs is { } ms)
        {
            response["cache_refresh_duration_ms"] = ms;
        }

        return response;
    }

    /// <summary>Serializes <paramref name="response"/> (an object) and adds the fields: <c>return Results.Ok(freshness.AddTo(job));</c>.</summary>
    /// <typeparam name="T">The response's type.</typeparam>
    /// <param name="response">The response body; it must serialize to a JSON object.</param>
    /// <param name="options">The serializer options; the default is <see cref="JsonSerializerDefaults.Web"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="response"/> does not serialize to a JSON object.</exception>
    public JsonObject AddTo<T>(T response, JsonSerializerOptions? options = null)
    {
        var node = JsonSerializer.SerializeToNode(response, options ?? JsonSerializerOptions.Web);
        return AddTo(node as JsonObject ?? throw new ArgumentException($"The response must serialize to a JSON object; {typeof(T).Name} does not.", nameof(response)));
    }
}
