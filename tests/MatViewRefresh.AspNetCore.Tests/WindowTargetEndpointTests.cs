using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>A schedule's window targets (mart tables) are reported next to the views, and cannot be refreshed through POST /refresh.</summary>
public sealed class WindowTargetEndpointTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private const string Query = "SELECT day, count(*) AS orders FROM orders WHERE day >= @from AND day < @to GROUP BY day";
    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        await db.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, day date NOT NULL);
            INSERT INTO orders (day) SELECT current_date - (i % 5) FROM generate_series(1, 50) AS i;
            CREATE TABLE IF NOT EXISTS daily_orders (day date PRIMARY KEY, orders bigint NOT NULL);
            """);
        var builder = TestApp.CreateBuilder(db.ConnectionString, o =>
        {
            TestApp.HierarchySchedule(o);
            o.Schedules["marts"] = new RefreshScheduleOptions
            {
                Windows = [new RefreshScheduleWindow { Table = "daily_orders", DateColumn = "day", Query = Query }],
                Interval = TimeSpan.FromHours(1),
                MaxCatchUpRuns = 0,
            };
        });
        _app = await TestApp.StartAsync(builder, app => app.MapMatViewRefreshEndpoints("/api/matviews", o => o.AllowAnonymous = true));
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.StopAsync().WaitAsync(TestApp.Patience);
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Freshness_and_metrics_report_the_window_target()
    {
        var (_, before) = await _client.GetJsonAsync("/api/matviews/freshness");
        var listed = before.GetProperty("views").EnumerateArray().Single(v => v.GetProperty("view").GetString() == "daily_orders");
        Assert.Equal("window", listed.GetProperty("kind").GetString());
        Assert.False(listed.GetProperty("refreshable").GetBoolean());
        Assert.True(listed.GetProperty("stale").GetBoolean());

        var result = await _app.Services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.Window("daily_orders", "day", Query));
        Assert.True(result.Success, result.Error?.Message);

        var (status, one) = await _client.GetJsonAsync("/api/matviews/freshness/daily_orders");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("window", one.GetProperty("kind").GetString());
        Assert.False(one.GetProperty("stale").GetBoolean());
        var (metricsStatus, metrics) = await _client.GetJsonAsync("/api/matviews/refresh/automated/metrics?view_name=daily_orders");
        Assert.Equal(HttpStatusCode.OK, metricsStatus);
        Assert.Equal("daily_orders", Assert.Single(metrics.GetProperty("metrics").EnumerateArray()).GetProperty("view_name").GetString());
    }
}
