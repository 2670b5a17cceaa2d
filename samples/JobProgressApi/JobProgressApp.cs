using MatViewRefresh;
using MatViewRefresh.AspNetCore;
using Npgsql;

namespace JobProgressApi;

/// <summary>
/// Seed 002: <c>GET /jobs/{id}</c> served from the <c>job_progress</c> materialized view with freshness fields
/// (<c>data_source</c>, <c>cache_refreshed_at</c>, <c>cache_refresh_duration_ms</c>, and <c>Last-Modified</c>);
/// <c>?real_time=true</c> reads the base tables instead, without them. A schedule refreshes the view every 30 s; the
/// refresh routes and the status page are under /api/matviews.
/// </summary>
public static class JobProgressApp
{
    public const string View = "public.job_progress";

    private const string Progress = """
        SELECT j.job_id, j.status, count(o.object_id), count(*) FILTER (WHERE o.state = 'succeeded'), count(*) FILTER (WHERE o.state = 'failed')
          FROM jobs j LEFT JOIN job_objects o USING (job_id)
         WHERE j.job_id = $1
         GROUP BY j.job_id, j.status
        """;

    public static void ConfigureServices(WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        builder.Services.AddMatViewRefresh(builder.Configuration.GetSection(MatViewRefreshOptions.SectionName));
        builder.Services.AddHealthChecks().AddMatViewRefresh([View], maxAge: TimeSpan.FromMinutes(2));
    }

    public static async Task EnsureSchemaAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        await using var stream = typeof(JobProgressApp).Assembly.GetManifestResourceStream("JobProgressApi.schema.sql")!;
        using var reader = new StreamReader(stream);
        await using var command = dataSource.CreateCommand(await reader.ReadToEndAsync(cancellationToken));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public static void MapEndpoints(WebApplication app)
    {
        // Bound to 127.0.0.1 and anonymous on purpose for the demo (JobProgressApi:AllowAnonymous; a warning is logged at start).
        var allowAnonymous = app.Configuration.GetValue("JobProgressApi:AllowAnonymous", false);
        app.MapMatViewRefreshEndpoints("/api/matviews", o =>
        {
            o.AllowAnonymous = allowAnonymous;
            o.StaleAfter = TimeSpan.FromMinutes(2);
        });
        app.MapHealthChecks("/health");
        app.MapGet("/jobs/{id}", GetJobAsync);

        // Marks objects of a job done, to watch the cached progress lag the real-time one until the next refresh.
        app.MapPost("/jobs/{id}/progress", async (string id, int? succeeded, NpgsqlDataSource dataSource, CancellationToken cancellationToken) =>
        {
            if (succeeded is not ({ } count and > 0 and <= 1_000_000))
            {
                return Results.Problem(statusCode: 400, detail: $"succeeded: '{succeeded}' must be a whole number from 1 to 1000000.");
            }

            await using var command = dataSource.CreateCommand("""
                UPDATE job_objects SET state = 'succeeded'
                 WHERE (job_id, object_id) IN (SELECT job_id, object_id FROM job_objects WHERE job_id = $1 AND state = 'pending' ORDER BY object_id LIMIT $2)
                """);
            command.Parameters.Add(new() { Value = id });
            command.Parameters.Add(new() { Value = count });
            return Results.Ok(new { job_id = id, marked = await command.ExecuteNonQueryAsync(cancellationToken) });
        });
    }

    private static async Task<IResult> GetJobAsync(HttpContext context, string id, bool? real_time, NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        var realTime = real_time == true;
        await using var command = dataSource.CreateCommand(realTime
            ? Progress
            : "SELECT job_id, status, total, succeeded, failed FROM job_progress WHERE job_id = $1");
        command.Parameters.Add(new() { Value = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return Results.Problem(statusCode: 404, detail: $"Job '{id}' does not exist{(realTime ? "" : " (or is not in job_progress yet; try ?real_time=true)")}.");
        }

        var job = new JobProgress(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
        var freshness = realTime ? CacheFreshness.RealTime : await context.GetCacheFreshnessAsync(View, cancellationToken);
        return Results.Ok(freshness.AddTo(job, JsonOptions));
    }

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower };

    /// <summary>One job's progress, as seed 002 returns it.</summary>
    public sealed record JobProgress(string JobId, string Status, long Total, long Succeeded, long Failed);
}
