using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MatViewRefresh.AspNetCore;

/// <summary>The JSON of the endpoints: snake_case names, dictionary keys (view names) as they are, instants in UTC with <c>Z</c>.</summary>
internal static class Json
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new UtcTimestampConverter() },
    };

    /// <summary>Seconds since the Unix epoch, with milliseconds (seed 003's <c>last_refresh</c>, <c>last_run</c>, <c>next_run</c>).</summary>
    public static double? Unix(DateTimeOffset? instant) => instant is { } i ? i.ToUnixTimeMilliseconds() / 1000.0 : null;

    public static double? Ms(TimeSpan? duration) => duration is { } d ? Math.Round(d.TotalMilliseconds, 3) : null;

    public static double Ms(TimeSpan duration) => Math.Round(duration.TotalMilliseconds, 3);

    public static string Snake(string pascal) => JsonNamingPolicy.SnakeCaseLower.ConvertName(pascal);

    /// <summary>
    /// A target's name as the client writes it: without the schema when it is the default schema (<c>mv_entity_ancestors</c>,
    /// the keys of seed 003's <c>results</c>), qualified otherwise (<c>sales.daily_totals</c>).
    /// </summary>
    public static string Name(string qualified, string defaultSchema)
    {
        var schemaPrefix = new QualifiedName(defaultSchema, "x").ToString()[..^1];
        return qualified.StartsWith(schemaPrefix, StringComparison.Ordinal) && qualified.Length > schemaPrefix.Length
            ? qualified[schemaPrefix.Length..]
            : qualified;
    }
}

/// <summary>Writes an instant as UTC ISO 8601 with <c>Z</c> (<c>2025-11-09T10:14:30.5Z</c>); reads any ISO 8601 instant.</summary>
internal sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Format(value));

    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}

/// <summary>
/// Writes a number with a decimal point (<c>100.0</c>, not <c>100</c>): seed 003's durations, <c>success_rate</c> and Unix
/// times are floats, so a client that tells integers from floats (Python's <c>json</c>) always gets a float.
/// </summary>
internal sealed class FloatConverter : JsonConverter<double>
{
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        if (double.IsFinite(value) && value == Math.Floor(value) && Math.Abs(value) < 1e15)
        {
            writer.WriteRawValue(((long)value).ToString(CultureInfo.InvariantCulture) + ".0", skipInputValidation: true);
        }
        else
        {
            writer.WriteNumberValue(value);
        }
    }
}
