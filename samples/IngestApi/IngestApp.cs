using System.Globalization;
using System.Text.Json;
using MatViewRefresh;
using Microsoft.Extensions.Options;
using Npgsql;

namespace IngestApi;

/// <summary>
/// Refresh-on-ingest (seed 000): POST a batch of samples for one user; that user's local day(s) in
/// marts.daily_features are recomputed a moment later through <see cref="IRefreshDebouncer"/>.
/// </summary>
public static class IngestApp
{
    public const string RefreshFunction = "marts.refresh_daily_features_user";
    public const string DefaultTimeZone = "America/Chicago";

    /// <summary>Registers the services: the database, MatViewRefresh bound from the "MatViewRefresh" section.</summary>
    public static void ConfigureServices(WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        // With MatViewRefresh:Durable:Enabled=true the batch's refreshes are durable requests (enqueued in its transaction) and
        // every instance's worker can run them: the resolver turns a stored request back into its user-day target.
        builder.Services.AddMatViewRefresh(builder.Configuration.GetSection(MatViewRefreshOptions.SectionName), o => o.Durable.Resolver = ResolveDayTarget);
    }

    /// <summary>Creates the sample's tables and refresh function (idempotent).</summary>
    public static async Task EnsureSchemaAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        await using var stream = typeof(IngestApp).Assembly.GetManifestResourceStream("IngestApi.schema.sql")!;
        using var reader = new StreamReader(stream);
        await using var command = dataSource.CreateCommand(await reader.ReadToEndAsync(cancellationToken));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The refresh target of one user's local day.</summary>
    public static RefreshTarget DayTarget(Guid userId, DateOnly day) =>
        RefreshTarget.Function(RefreshFunction, ("user_id", userId), ("day_local", day));

    /// <summary>The target stored as <c>marts.refresh_daily_features_user(day_local=2025-11-08&amp;user_id=…)</c>, or null for any other text.</summary>
    public static RefreshTarget? ResolveDayTarget(string text)
    {
        const string Prefix = RefreshFunction + "(day_local=";
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !text.EndsWith(')'))
        {
            return null;
        }

        var parts = text[Prefix.Length..^1].Split("&user_id=");
        return parts.Length == 2
            && DateOnly.TryParseExact(parts[0], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            && Guid.TryParseExact(parts[1], "D", out var user)
            ? DayTarget(user, day) : null;
    }

    public static void MapEndpoints(WebApplication app)
    {
        app.MapPost("/v1/samples/batch", IngestBatchAsync);
        app.MapGet("/v1/features/today", GetFeaturesAsync);
    }

    private static async Task<IResult> IngestBatchAsync(
        HttpRequest request, NpgsqlDataSource dataSource, IRefreshDebouncer debouncer, IRefreshQueue queue, IOptions<MatViewRefreshOptions> options, CancellationToken cancellationToken)
    {
        if (ParseCommon(request, out var userId, out var zone, out var problem) is false)
        {
            return Problem(problem!);
        }

        List<Sample> samples;
        try
        {
            samples = await ReadSamplesAsync(request, cancellationToken);
        }
        catch (BadBatchException e)
        {
            return Problem(e.Message);
        }

        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await using (var settings = new NpgsqlCommand(
                "INSERT INTO ingest.user_settings (user_id, tz) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET tz = EXCLUDED.tz", connection, transaction))
            {
                settings.Parameters.Add(new() { Value = userId });
                settings.Parameters.Add(new() { Value = zone!.Id });
                await settings.ExecuteNonQueryAsync(cancellationToken);
            }

            await using (var insert = new NpgsqlCommand(
                "INSERT INTO ingest.samples (user_id, ts, type, value) SELECT $1, unnest($2::timestamptz[]), unnest($3::text[]), unnest($4::float8[])", connection, transaction))
            {
                insert.Parameters.Add(new() { Value = userId });
                insert.Parameters.Add(new() { Value = samples.Select(s => s.Ts.ToUniversalTime()).ToArray() });
                insert.Parameters.Add(new() { Value = samples.Select(s => s.Type).ToArray() });
                insert.Parameters.Add(new() { Value = samples.Select(s => s.Value).ToArray() });
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }

            if (options.Value.Durable.Enabled)
            {
                // Durable: one request per local day, committed with the samples or not at all; a worker runs them.
                var days = samples.Select(s => debouncer.LocalDay(s.Ts, zone.Id)).Distinct().Order().ToList();
                await queue.EnqueueAsync(days.Select(day => DayTarget(userId, day)), transaction, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                return Results.Json(
                    new { inserted = samples.Count, durable_requests = days.Select(d => DayTarget(userId, d).ToString()) },
                    statusCode: StatusCodes.Status202Accepted);
            }

            await transaction.CommitAsync(cancellationToken);
        }

        // After the commit: the refresh of each local day the batch touched, debounced per user-day.
        var tickets = samples
            .Select(s => debouncer.LocalDay(s.Ts, zone.Id))
            .Distinct()
            .Order()
            .Select(day => debouncer.Request(DayTarget(userId, day)))
            .ToList();
        foreach (var observer in request.HttpContext.RequestServices.GetServices<IBatchTicketObserver>())
        {
            observer.Requested(userId, tickets);
        }

        return Results.Json(
            new { inserted = samples.Count, tickets = tickets.Select(t => new { key = t.Key, scheduled_for = t.ScheduledFor, coalesced = t.Joined, skipped = t.Skipped }) },
            statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> GetFeaturesAsync(HttpRequest request, NpgsqlDataSource dataSource, IRefreshLog log, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ParseCommon(request, out var userId, out var zone, out var problem) is false)
        {
            return Problem(problem!);
        }

        var trace = new List<string>();
        DateOnly day;
        if (request.Query["day"].FirstOrDefault() is { Length: > 0 } dayText)
        {
            if (!DateOnly.TryParseExact(dayText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day))
            {
                return Problem($"day '{dayText}' is not a date in the form YYYY-MM-DD.");
            }
        }
        else
        {
            day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(time.GetUtcNow(), zone!).DateTime);
        }

        trace.Add($"local day {day:yyyy-MM-dd} in {zone!.Id}");
        long sampleCount = 0;
        double valueSum = 0;
        double? valueAvg = null;
        await using (var command = dataSource.CreateCommand("SELECT sample_count, value_sum, value_avg FROM marts.daily_features WHERE user_id = $1 AND day_local = $2"))
        {
            command.Parameters.Add(new() { Value = userId });
            command.Parameters.Add(new() { Value = day });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                sampleCount = reader.GetInt64(0);
                valueSum = reader.GetDouble(1);
                valueAvg = reader.GetDouble(2);
                trace.Add("mart row loaded");
            }
            else
            {
                trace.Add("no mart row for this day yet");
            }
        }

        var freshness = await log.GetFreshnessAsync(DayTarget(userId, day), cancellationToken);
        DateTimeOffset? lastUpload = null;
        await using (var command = dataSource.CreateCommand("SELECT max(inserted_at) FROM ingest.samples WHERE user_id = $1"))
        {
            command.Parameters.Add(new() { Value = userId });
            lastUpload = await command.ExecuteScalarAsync(cancellationToken) is DateTime last ? new DateTimeOffset(last, TimeSpan.Zero) : null;
        }

        if (freshness?.RefreshedAt is { } refreshedAt)
        {
            trace.Add(lastUpload is { } upload && refreshedAt >= upload
                ? "refreshed features snapshot after upload"
                : "features snapshot is older than the latest upload; a refresh is scheduled");
        }
        else
        {
            trace.Add(freshness?.LastError is { } error ? $"last refresh failed: {error}" : "never refreshed");
        }

        return Results.Json(new
        {
            user_id = userId,
            day_local = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            sample_count = sampleCount,
            value_sum = valueSum,
            value_avg = valueAvg,
            refreshed_at = freshness?.RefreshedAt,
            age_ms = freshness?.Age?.TotalMilliseconds,
            trace,
        });
    }

    private static bool ParseCommon(HttpRequest request, out Guid userId, out TimeZoneInfo? zone, out string? problem)
    {
        userId = Guid.Empty;
        zone = null;
        var tz = request.Query["tz"].FirstOrDefault() is { Length: > 0 } given ? given : DefaultTimeZone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(tz);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            problem = $"tz '{tz}' is not a known IANA time zone (for example America/Chicago).";
            return false;
        }

        var header = request.Headers["X-User-Id"].FirstOrDefault();
        if (string.IsNullOrWhiteSpace(header))
        {
            problem = "the X-User-Id header is required (a UUID).";
            return false;
        }

        if (!Guid.TryParseExact(header.Trim(), "D", out userId))
        {
            problem = $"X-User-Id '{header}' is not a UUID.";
            return false;
        }

        problem = null;
        return true;
    }

    private static async Task<List<Sample>> ReadSamplesAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, cancellationToken: cancellationToken);
        }
        catch (JsonException e)
        {
            throw new BadBatchException($"the body is not valid JSON: {e.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("samples", out var items)
                || items.ValueKind != JsonValueKind.Array)
            {
                throw new BadBatchException("the body must be an object with a \"samples\" array.");
            }

            if (items.GetArrayLength() == 0)
            {
                throw new BadBatchException("\"samples\" is empty.");
            }

            var samples = new List<Sample>(items.GetArrayLength());
            var index = 0;
            foreach (var item in items.EnumerateArray())
            {
                var at = $"samples[{index}]";
                if (item.ValueKind != JsonValueKind.Object)
                {
                    throw new BadBatchException($"{at} is not an object.");
                }

                if (!item.TryGetProperty("ts", out var ts) || ts.ValueKind != JsonValueKind.String
                    || !DateTimeOffset.TryParse(ts.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.None, out var instant)
                    || !HasOffset(ts.GetString()!))
                {
                    throw new BadBatchException($"{at}.ts must be an ISO-8601 timestamp with an offset, such as 2025-11-08T10:00:00Z.");
                }

                if (!item.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(type.GetString()))
                {
                    throw new BadBatchException($"{at}.type must be a non-empty string.");
                }

                if (!item.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    throw new BadBatchException($"{at}.value must be a number.");
                }

                samples.Add(new Sample(instant, type.GetString()!, number));
                index++;
            }

            return samples;
        }
    }

    private static bool HasOffset(string text) =>
        text.EndsWith('Z') || text.EndsWith('z') || (text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':');

    private static IResult Problem(string message) => Results.Json(new { error = message }, statusCode: StatusCodes.Status400BadRequest);

    private sealed record Sample(DateTimeOffset Ts, string Type, double Value);

    private sealed class BadBatchException(string message) : Exception(message);
}

/// <summary>
/// Told the debounce tickets of every accepted batch, after the commit. The app registers none; a test registers one
/// to await the very runs the endpoint requested (a new request would schedule a run of its own and hide a lost update).
/// </summary>
public interface IBatchTicketObserver
{
    /// <summary>The batch of <paramref name="userId"/> was committed and these refreshes were requested, one per local day.</summary>
    void Requested(Guid userId, IReadOnlyList<RefreshTicket> tickets);
}
