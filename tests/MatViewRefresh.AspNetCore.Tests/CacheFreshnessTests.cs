using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>Seed 002's freshness fields on a host's own response, and Last-Modified from the view's data-as-of.</summary>
public sealed class CacheFreshnessTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private sealed record Job(string JobId, string Status, int Total);

    [Fact]
    public async Task A_cached_response_gets_the_refresh_fields_and_Last_Modified_a_real_time_one_only_its_source()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString);
        await using var app = builder.Build();
        app.MapGet("/jobs/{id}", async (HttpContext context, string id, bool? real_time) =>
        {
            var job = new Job(id, "processing", 100_000);
            var freshness = real_time == true ? CacheFreshness.RealTime : await context.GetCacheFreshnessAsync("mv_entity_ancestors");
            return Results.Ok(freshness.AddTo(job));
        });
        await app.StartAsync().WaitAsync(TestApp.Patience);
        using var client = app.GetTestClient();
        var refreshed = await app.Services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("mv_entity_ancestors"));
        Assert.True(refreshed.Success);

        using var cached = await client.GetAsync("/jobs/abc-123");
        var body = JsonDocument.Parse(await cached.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("abc-123", body.GetProperty("jobId").GetString());
        Assert.Equal("cached", body.GetProperty("data_source").GetString());
        var refreshedAt = body.GetProperty("cache_refreshed_at").GetString()!;
        Assert.EndsWith("Z", refreshedAt, StringComparison.Ordinal);
        Assert.Equal(refreshed.RefreshedAt!.Value.UtcDateTime, DateTime.Parse(refreshedAt, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal));
        Assert.Equal(JsonValueKind.Number, body.GetProperty("cache_refresh_duration_ms").ValueKind);
        var dataAsOf = refreshed.DataAsOf!.Value;
        Assert.Equal(dataAsOf.AddTicks(-(dataAsOf.Ticks % TimeSpan.TicksPerSecond)), cached.Content.Headers.LastModified);

        using var realTime = await client.GetAsync("/jobs/abc-123?real_time=true");
        var live = JsonDocument.Parse(await realTime.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("real_time", live.GetProperty("data_source").GetString());
        Assert.False(live.TryGetProperty("cache_refreshed_at", out _));
        Assert.False(live.TryGetProperty("cache_refresh_duration_ms", out _));
        Assert.Null(realTime.Content.Headers.LastModified);
        await app.StopAsync();
    }

    [Fact]
    public void Serialized_on_its_own_it_uses_seed_002s_names()
    {
        var freshness = new CacheFreshness { DataSource = CacheFreshness.CachedSource, CacheRefreshedAt = new DateTimeOffset(2025, 11, 9, 10, 14, 30, TimeSpan.Zero), CacheRefreshDurationMs = 920 };

        Assert.Equal("""{"data_source":"cached","cache_refreshed_at":"2025-11-09T10:14:30Z","cache_refresh_duration_ms":920}""", JsonSerializer.Serialize(freshness));
        Assert.Equal("""{"data_source":"real_time"}""", JsonSerializer.Serialize(CacheFreshness.RealTime));
    }
}
