using System.Net;
using JobProgressApi;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using RefreshApi;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>An empty database per sample on the shared throwaway server (the samples create their own schema).</summary>
public sealed class EmptyDatabaseFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync() => ConnectionString = await (await SharedServer.GetAsync()).CreateDatabaseAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Proves the sample ran on this database (not on a throwaway server of its own).</summary>
    public async Task<long> CountAsync(string table)
    {
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(ConnectionString);
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM {table}");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}

/// <summary>A sample run as it is deployed (its own Program), on the test's database instead of its own throwaway server; <typeparamref name="TEntryPoint"/> is any type of the sample.</summary>
public sealed class SampleFactory<TEntryPoint>(string connectionString, params (string Key, string Value)[] settings) : WebApplicationFactory<TEntryPoint>
    where TEntryPoint : class
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:Default", connectionString);
        builder.UseSetting("urls", "http://127.0.0.1:0");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }
    }
}

/// <summary>Smoke test of samples/RefreshApi (seed 003) through WebApplicationFactory.</summary>
public sealed class RefreshApiSampleTests(EmptyDatabaseFixture db) : IClassFixture<EmptyDatabaseFixture>
{
    [Fact]
    public async Task The_seed_003_routes_work_under_api_entities_with_the_scheduler_starting_stopped()
    {
        // No catch-up run at start: the counts below are the test's own runs only.
        await using var factory = new SampleFactory<Ancestor>(db.ConnectionString, ("MatViewRefresh:Schedules:hierarchy:MaxCatchUpRuns", "0"));
        using var client = factory.CreateClient();

        var (statusCode, status) = await client.GetJsonAsync("/api/entities/refresh/status");
        Assert.Equal(HttpStatusCode.OK, statusCode);
        Assert.False(status.GetProperty("automated_refresh_status").GetProperty("enabled").GetBoolean());
        Assert.Equal(300, status.GetProperty("automated_refresh_status").GetProperty("interval_seconds").GetDouble());
        Assert.Equal(["l1_cache", "l2_cache", "l3_cache", "l4_cache", "overall"], status.GetProperty("cache_metrics").Names().Order());

        var (refreshCode, refresh) = await client.PostJsonAsync("/api/entities/refresh");
        Assert.Equal(HttpStatusCode.OK, refreshCode);
        Assert.Equal("success", refresh.GetProperty("status").GetString());
        Assert.Equal(RefreshApp.Views.Order(), refresh.GetProperty("results").Names().Order());

        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/api/entities/refresh/automated/start")).Status);
        var (forceCode, force) = await client.PostJsonAsync("/api/entities/refresh/automated/force");
        Assert.Equal(HttpStatusCode.OK, forceCode);
        Assert.Equal(3, force.GetProperty("result").GetProperty("views_refreshed").GetInt32());
        var (_, metrics) = await client.GetJsonAsync("/api/entities/refresh/automated/metrics?limit=50");
        Assert.Equal(6, metrics.GetProperty("summary").GetProperty("success_count").GetInt64());
        var (stopCode, stop) = await client.PostJsonAsync("/api/entities/refresh/automated/stop");
        Assert.Equal(HttpStatusCode.OK, stopCode);
        Assert.Equal(1, stop.GetProperty("final_metrics").GetProperty("total_refreshes").GetInt64());

        var (_, ancestors) = await client.GetJsonAsync("/api/entities/12/ancestors");
        Assert.Equal([2, 1], ancestors.GetProperty("ancestors").EnumerateArray().Select(a => a.GetProperty("id").GetInt32()));
        Assert.Equal("Healthy", await client.GetStringAsync("/health"));
        Assert.Equal(5000, await db.CountAsync("entities"));
        using var dashboard = await client.GetAsync("/api/entities/dashboard");
        Assert.Equal("text/html", dashboard.Content.Headers.ContentType?.MediaType);
        Assert.Contains("frame-ancestors 'none'", dashboard.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("DENY", dashboard.Headers.GetValues("X-Frame-Options").Single());
    }
}

/// <summary>Smoke test of samples/JobProgressApi (seed 002) through WebApplicationFactory.</summary>
public sealed class JobProgressApiSampleTests(EmptyDatabaseFixture db) : IClassFixture<EmptyDatabaseFixture>
{
    [Fact]
    public async Task A_job_is_served_from_the_view_with_freshness_fields_and_real_time_from_the_base_tables_without()
    {
        await using var factory = new SampleFactory<JobProgressApp.JobProgress>(db.ConnectionString);
        using var client = factory.CreateClient();
        // The schedule's catch-up or first tick may not have come yet: refresh through the group's route.
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/api/matviews/refresh")).Status);

        var (code, cached) = await client.GetJsonAsync("/jobs/abc-123");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("abc-123", cached.GetProperty("job_id").GetString());
        Assert.Equal(100_000, cached.GetProperty("total").GetInt64());
        Assert.Equal(50_000, cached.GetProperty("succeeded").GetInt64());
        Assert.Equal("cached", cached.GetProperty("data_source").GetString());
        Assert.EndsWith("Z", cached.GetProperty("cache_refreshed_at").GetString(), StringComparison.Ordinal);
        Assert.True(cached.GetProperty("cache_refresh_duration_ms").GetInt64() >= 0);

        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/jobs/abc-123/progress?succeeded=10")).Status);
        var (_, stale) = await client.GetJsonAsync("/jobs/abc-123");
        Assert.Equal(50_000, stale.GetProperty("succeeded").GetInt64());
        var (_, live) = await client.GetJsonAsync("/jobs/abc-123?real_time=true");
        Assert.Equal(50_010, live.GetProperty("succeeded").GetInt64());
        Assert.Equal("real_time", live.GetProperty("data_source").GetString());
        Assert.False(live.TryGetProperty("cache_refreshed_at", out _));
        Assert.False(live.TryGetProperty("cache_refresh_duration_ms", out _));

        var (_, status) = await client.GetJsonAsync("/api/matviews/refresh/status");
        Assert.True(status.GetProperty("automated_refresh_status").GetProperty("enabled").GetBoolean());
        Assert.Equal(30, status.GetProperty("automated_refresh_status").GetProperty("interval_seconds").GetDouble());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetJsonAsync("/jobs/nope")).Status);
        using var dashboard = await client.GetAsync("/api/matviews/dashboard");
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Equal(100_000, await db.CountAsync("job_objects"));
    }
}
