using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>The automated-refresh routes (seed 003) drive the scheduler: start is idempotent, stop and force need it running.</summary>
public sealed class AutomatedRefreshEndpointTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, TestApp.HierarchySchedule);
        _app = await TestApp.StartAsync(builder, app => app.MapMatViewRefreshEndpoints("/api/entities", o => o.AllowAnonymous = true));
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.StopAsync().WaitAsync(TestApp.Patience);
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Start_force_stop_cycle_in_seed_003s_shapes()
    {
        var (startStatus, start) = await _client.PostJsonAsync("/api/entities/refresh/automated/start");
        Assert.Equal(HttpStatusCode.OK, startStatus);
        Assert.Equal("success", start.GetProperty("status").GetString());
        Assert.Equal("Automated refresh service started successfully", start.GetProperty("message").GetString());
        var config = start.GetProperty("config");
        Assert.Equal(300, config.GetProperty("interval_seconds").GetDouble());
        Assert.True(config.GetProperty("concurrent_refresh").GetBoolean());
        Assert.Equal(DatabaseFixture.HierarchyViews, config.GetProperty("views").EnumerateArray().Select(v => v.GetString()));

        var (againStatus, again) = await _client.PostJsonAsync("/api/entities/refresh/automated/start");
        Assert.Equal(HttpStatusCode.OK, againStatus);
        Assert.Equal("Automated refresh service is already running", again.GetProperty("message").GetString());

        var (_, running) = await _client.GetJsonAsync("/api/entities/refresh/status");
        var automated = running.GetProperty("automated_refresh_status");
        Assert.True(automated.GetProperty("enabled").GetBoolean());
        var nextRun = automated.GetProperty("next_run").GetDouble();
        Assert.InRange(nextRun, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1, DateTimeOffset.UtcNow.AddSeconds(301).ToUnixTimeSeconds());

        var (forceStatus, force) = await _client.PostJsonAsync("/api/entities/refresh/automated/force");
        Assert.Equal(HttpStatusCode.OK, forceStatus);
        Assert.Equal("success", force.GetProperty("status").GetString());
        Assert.Equal("Forced refresh completed successfully", force.GetProperty("message").GetString());
        var result = force.GetProperty("result");
        Assert.Equal(3, result.GetProperty("views_refreshed").GetInt32());
        Assert.True(result.GetProperty("success").GetBoolean());
        Assert.True(result.GetProperty("duration_ms").GetDouble() > 0);
        Assert.Equal(DatabaseFixture.HierarchyViews.Order(), result.GetProperty("results").Names().Order());
        Assert.All(result.GetProperty("results").EnumerateObject(), r => Assert.Equal(JsonValueKind.True, r.Value.ValueKind));
        Assert.All(result.GetProperty("details").EnumerateObject(), r => Assert.Equal("succeeded", r.Value.GetProperty("outcome").GetString()));

        var (_, afterForce) = await _client.GetJsonAsync("/api/entities/refresh/status");
        var counted = afterForce.GetProperty("automated_refresh_status");
        Assert.Equal(1, counted.GetProperty("success_count").GetInt64());
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, counted.GetProperty("last_run").ValueKind);

        var (stopStatus, stop) = await _client.PostJsonAsync("/api/entities/refresh/automated/stop");
        Assert.Equal(HttpStatusCode.OK, stopStatus);
        Assert.Equal("Automated refresh service stopped successfully", stop.GetProperty("message").GetString());
        var final = stop.GetProperty("final_metrics");
        Assert.Equal(1, final.GetProperty("total_refreshes").GetInt64());
        Assert.Equal(1, final.GetProperty("successful_refreshes").GetInt64());
        Assert.Equal(0, final.GetProperty("failed_refreshes").GetInt64());
        Assert.True(final.GetProperty("average_duration_ms").GetDouble() > 0);
        Assert.True(final.GetProperty("uptime_seconds").GetDouble() > 0);
    }

    [Fact]
    public async Task A_forced_run_where_every_view_fails_is_a_500_with_a_detail()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, o => o.Schedules["broken"] = new RefreshScheduleOptions
        {
            Views = ["mv_broken"],
            Interval = TimeSpan.FromSeconds(300),
            MaxCatchUpRuns = 0,
        });
        await using var app = await TestApp.StartAsync(builder, a => a.MapMatViewRefreshEndpoints("/api/entities", o => o.AllowAnonymous = true));
        using var client = app.GetTestClient();
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/api/entities/refresh/automated/start")).Status);

        var (status, body) = await client.PostJsonAsync("/api/entities/refresh/automated/force");

        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("failed", body.GetProperty("status").GetString());
        Assert.Contains("division by zero", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(body.GetProperty("result").GetProperty("results").GetProperty("mv_broken").GetBoolean());
        Assert.Equal(0, body.GetProperty("result").GetProperty("views_refreshed").GetInt32());
        await app.StopAsync().WaitAsync(TestApp.Patience);
    }

    [Theory]
    [InlineData("/api/entities/refresh/automated/stop")]
    [InlineData("/api/entities/refresh/automated/force")]
    public async Task Stop_or_force_when_not_running_is_a_409_with_a_detail(string url)
    {
        var (status, body) = await _client.PostJsonAsync(url);

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("Automated refresh service is not running", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Stop_waits_for_the_run_in_progress_and_counts_it()
    {
        await _client.PostJsonAsync("/api/entities/refresh/automated/start");
        // Lock the base table so the forced run blocks inside its first refresh.
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockView = new Npgsql.NpgsqlCommand("LOCK TABLE entities IN ACCESS EXCLUSIVE MODE", blocker, transaction))
        {
            await lockView.ExecuteNonQueryAsync();
        }

        var force = _client.PostJsonAsync("/api/entities/refresh/automated/force");
        await DatabaseFixture.EventuallyAsync(
            async () => (await _client.GetJsonAsync("/api/entities/refresh/status")).Body.GetProperty("automated_refresh_status").GetProperty("running").GetBoolean(),
            "the forced run to be in progress");
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'entities'::regclass") > 0,
            "the refresh to wait for the lock");

        var stop = _client.PostJsonAsync("/api/entities/refresh/automated/stop");
        Assert.False(stop.IsCompleted, "stop waits for the run in progress");
        await transaction.RollbackAsync();

        var (stopStatus, stopped) = await stop;
        Assert.Equal(HttpStatusCode.OK, stopStatus);
        Assert.Equal(1, stopped.GetProperty("final_metrics").GetProperty("successful_refreshes").GetInt64());
        Assert.Equal(HttpStatusCode.OK, (await force).Status);
    }

    [Fact]
    public async Task Force_while_the_schedule_is_mid_run_is_a_409_and_the_run_goes_on()
    {
        await _client.PostJsonAsync("/api/entities/refresh/automated/start");
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE entities IN ACCESS EXCLUSIVE MODE", blocker, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        var first = _client.PostJsonAsync("/api/entities/refresh/automated/force");
        await DatabaseFixture.EventuallyAsync(
            async () => (await _client.GetJsonAsync("/api/entities/refresh/status")).Body.GetProperty("automated_refresh_status").GetProperty("running").GetBoolean(),
            "the first forced run to be in progress");

        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh/automated/force");

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.StartsWith("A scheduled refresh is already running", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await transaction.RollbackAsync();
        var (firstStatus, firstBody) = await first;
        Assert.Equal(HttpStatusCode.OK, firstStatus);
        Assert.Equal("success", firstBody.GetProperty("status").GetString());
        await _client.PostJsonAsync("/api/entities/refresh/automated/stop");
    }
}
