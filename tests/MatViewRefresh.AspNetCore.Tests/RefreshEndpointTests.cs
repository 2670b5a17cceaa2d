using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>Every route of the group over HTTP on a real PostgreSQL: status codes and JSON shapes as in seed 003.</summary>
public sealed class RefreshEndpointTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, TestApp.HierarchySchedule);
        _app = await TestApp.StartAsync(builder, app => app.MapMatViewRefreshEndpoints("/api/entities", o =>
        {
            o.AllowAnonymous = true;
            // The host's own status fields (seed 003's cache_metrics); "status" clashes with the package's and is dropped.
            o.StatusFields = (context, _) => Task.FromResult<IReadOnlyDictionary<string, object?>>(new Dictionary<string, object?>
            {
                ["cache_metrics"] = new { overall = new { hits = 3 } },
                ["status"] = "overridden",
                ["path"] = context.Request.Path.Value,
            });
        }));
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.StopAsync().WaitAsync(TestApp.Patience);
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Refresh_without_views_refreshes_the_configured_views_in_seed_003s_shape()
    {
        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("success", body.GetProperty("status").GetString());
        Assert.Equal("All materialized views refreshed successfully", body.GetProperty("message").GetString());
        Assert.True(body.GetProperty("duration_ms").GetDouble() > 0);
        Assert.False(body.TryGetProperty("failed_views", out _), "failed_views is only present on partial success");
        // Seed 003: "results": {"mv_entity_ancestors": true, …}, keyed by the names the client uses.
        var results = body.GetProperty("results");
        Assert.Equal(DatabaseFixture.HierarchyViews.Order(), results.Names().Order());
        Assert.All(results.EnumerateObject(), r => Assert.Equal(JsonValueKind.True, r.Value.ValueKind));
        var details = body.GetProperty("details");
        Assert.Equal(DatabaseFixture.HierarchyViews.Order(), details.Names().Order());
        var ancestors = details.GetProperty("mv_entity_ancestors");
        Assert.True(ancestors.GetProperty("success").GetBoolean());
        Assert.Equal("succeeded", ancestors.GetProperty("outcome").GetString());
        Assert.Equal("concurrent", ancestors.GetProperty("mode").GetString());
        Assert.False(string.IsNullOrEmpty(ancestors.GetProperty("mode_reason").GetString()));
        Assert.True(ancestors.GetProperty("duration_ms").GetDouble() > 0);
        Assert.Equal("full", details.GetProperty("mv_entity_hierarchy_stats").GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Refresh_of_listed_views_with_a_mode()
    {
        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh?views=mv_descendant_counts&mode=full");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("results").GetProperty("mv_descendant_counts").GetBoolean());
        var result = Assert.Single(body.GetProperty("details").EnumerateObject());
        Assert.Equal("mv_descendant_counts", result.Name);
        Assert.Equal("full", result.Value.GetProperty("mode").GetString());
        Assert.Equal("full", result.Value.GetProperty("requested_mode").GetString());
    }

    [Fact]
    public async Task A_failing_view_makes_a_partial_success_that_lists_it_with_its_error()
    {
        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh?views=mv_entity_ancestors,mv_broken");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("partial_success", body.GetProperty("status").GetString());
        Assert.Equal(["mv_broken"], body.GetProperty("failed_views").EnumerateArray().Select(v => v.GetString()));
        Assert.True(body.GetProperty("results").GetProperty("mv_entity_ancestors").GetBoolean());
        Assert.False(body.GetProperty("results").GetProperty("mv_broken").GetBoolean());
        var broken = body.GetProperty("details").GetProperty("mv_broken");
        Assert.False(broken.GetProperty("success").GetBoolean());
        Assert.Equal("failed", broken.GetProperty("outcome").GetString());
        Assert.Equal("22012", broken.GetProperty("error_sql_state").GetString());
        Assert.Contains("division by zero", broken.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_view_failing_is_a_500_with_status_failed()
    {
        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh?views=mv_broken");

        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("failed", body.GetProperty("status").GetString());
        Assert.False(body.TryGetProperty("failed_views", out _));
        // Seed 003's client reads "detail" from an error answer.
        Assert.Contains("mv_broken: division by zero", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/entities/refresh?mode=sideways", "mode", "sideways")]
    [InlineData("/api/entities/refresh?views=mv_entity_ancestors,bad%20name%3B", "views", "bad name;")]
    public async Task A_bad_query_value_is_a_400_naming_it(string url, string parameter, string value)
    {
        var (status, body) = await _client.PostJsonAsync(url);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(parameter, body.GetProperty("parameter").GetString());
        Assert.Equal(value, body.GetProperty("value").GetString());
        Assert.Contains($"'{value}'", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_view_is_a_404_naming_it_and_close_names()
    {
        var (status, body) = await _client.PostJsonAsync("/api/entities/refresh?views=mv_entity_ancestor");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("mv_entity_ancestor", body.GetProperty("view").GetString());
        Assert.Contains("mv_entity_ancestors", body.GetProperty("suggestions").EnumerateArray().Select(s => s.GetString()));
        Assert.Contains("'public.mv_entity_ancestor' does not exist", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_reports_the_last_refresh_and_the_stopped_scheduler()
    {
        await _client.PostJsonAsync("/api/entities/refresh");

        var (status, body) = await _client.GetJsonAsync("/api/entities/refresh/status");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("available", body.GetProperty("status").GetString());
        var lastRefresh = body.GetProperty("last_refresh").GetDouble();
        Assert.InRange(lastRefresh, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds());
        var automated = body.GetProperty("automated_refresh_status");
        Assert.False(automated.GetProperty("enabled").GetBoolean());
        Assert.False(automated.GetProperty("running").GetBoolean());
        Assert.Equal(300, automated.GetProperty("interval_seconds").GetDouble());
        Assert.Equal("UTC", automated.GetProperty("time_zone").GetString());
        Assert.Equal(JsonValueKind.Null, automated.GetProperty("next_run").ValueKind);
        foreach (var field in new[] { "last_run", "cron", "success_count", "failure_count", "skipped_count", "schedules" })
        {
            Assert.True(automated.TryGetProperty(field, out _), field);
        }

        Assert.Equal("hierarchy", Assert.Single(automated.GetProperty("schedules").EnumerateArray()).GetProperty("name").GetString());
    }

    [Fact]
    public async Task Metrics_return_history_rows_and_a_summary_in_seed_003s_shape()
    {
        await _client.PostJsonAsync("/api/entities/refresh");
        await _client.PostJsonAsync("/api/entities/refresh?views=mv_broken");

        var (status, body) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?limit=2");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("success", body.GetProperty("status").GetString());
        var rows = body.GetProperty("metrics").EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        foreach (var field in new[] { "id", "view_name", "refresh_duration_ms", "success", "created_at", "error_message" })
        {
            Assert.True(rows[0].TryGetProperty(field, out _), field);
        }

        var newest = rows[0];
        Assert.Equal("mv_broken", newest.GetProperty("view_name").GetString());
        Assert.False(newest.GetProperty("success").GetBoolean());
        Assert.EndsWith("Z", newest.GetProperty("created_at").GetString(), StringComparison.Ordinal);
        var summary = body.GetProperty("summary");
        foreach (var field in new[] { "total_count", "success_count", "failure_count", "success_rate", "average_duration_ms", "p95_duration_ms", "p99_duration_ms", "min_duration_ms", "max_duration_ms" })
        {
            Assert.True(summary.TryGetProperty(field, out _), field);
        }

        Assert.True(summary.GetProperty("failure_count").GetInt64() >= 1);
        Assert.InRange(summary.GetProperty("success_rate").GetDouble(), 0.001, 99.999);
        Assert.True(summary.GetProperty("p99_duration_ms").GetDouble() >= summary.GetProperty("p95_duration_ms").GetDouble());
    }

    [Fact]
    public async Task Durations_rates_and_unix_times_are_written_as_floats_as_in_seed_003()
    {
        await _client.PostJsonAsync("/api/entities/refresh?views=mv_entity_ancestors");

        // Only successes for this view: a success rate of 100 is written 100.0, as in the seed (Python reads it as a float).
        var (_, body) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?view_name=mv_entity_ancestors");
        Assert.Equal("100.0", body.GetProperty("summary").GetProperty("success_rate").GetRawText());
        Assert.Equal(100.0, body.GetProperty("summary").GetProperty("success_rate").GetDouble());
        Assert.Contains('.', body.GetProperty("summary").GetProperty("average_duration_ms").GetRawText());
        var (_, status) = await _client.GetJsonAsync("/api/entities/refresh/status");
        Assert.Contains('.', status.GetProperty("last_refresh").GetRawText());
    }

    [Fact]
    public async Task Status_carries_the_hosts_own_fields_but_never_lets_them_replace_the_packages()
    {
        var (code, status) = await _client.GetJsonAsync("/api/entities/refresh/status");

        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(3, status.GetProperty("cache_metrics").GetProperty("overall").GetProperty("hits").GetInt32());
        Assert.Equal("/api/entities/refresh/status", status.GetProperty("path").GetString());
        Assert.Equal("available", status.GetProperty("status").GetString());
        Assert.Single(status.EnumerateObject(), p => p.Name == "status");
    }

    [Fact]
    public async Task Metrics_filter_by_view_and_by_since_as_unix_seconds_or_iso_8601()
    {
        await _client.PostJsonAsync("/api/entities/refresh");

        var (_, byView) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?view_name=mv_entity_hierarchy_stats");
        Assert.NotEmpty(byView.GetProperty("metrics").EnumerateArray());
        Assert.All(byView.GetProperty("metrics").EnumerateArray(), r => Assert.Equal("mv_entity_hierarchy_stats", r.GetProperty("view_name").GetString()));

        var future = DateTimeOffset.UtcNow.AddHours(1);
        var (unixStatus, unix) = await _client.GetJsonAsync($"/api/entities/refresh/automated/metrics?since={future.ToUnixTimeSeconds()}");
        Assert.Equal(HttpStatusCode.OK, unixStatus);
        Assert.Empty(unix.GetProperty("metrics").EnumerateArray());
        Assert.Equal(0, unix.GetProperty("summary").GetProperty("total_count").GetInt64());

        var past = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O"));
        var (isoStatus, iso) = await _client.GetJsonAsync($"/api/entities/refresh/automated/metrics?since={past}");
        Assert.Equal(HttpStatusCode.OK, isoStatus);
        Assert.NotEmpty(iso.GetProperty("metrics").EnumerateArray());

        // An offset's '+' left unencoded in the query arrives as a space, and still means '+'.
        var later = DateTimeOffset.UtcNow.AddHours(1).ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-ddTHH:mm:sszzz", System.Globalization.CultureInfo.InvariantCulture);
        var (offsetStatus, offset) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?since=" + later);
        Assert.Equal(HttpStatusCode.OK, offsetStatus);
        Assert.Empty(offset.GetProperty("metrics").EnumerateArray());
    }

    [Theory]
    [InlineData("limit=abc", "limit", "abc")]
    [InlineData("limit=0", "limit", "0")]
    [InlineData("limit=10001", "limit", "10001")]
    [InlineData("since=yesterday", "since", "yesterday")]
    [InlineData("view_name=a.b.c.d", "view_name", "a.b.c.d")]
    public async Task Metrics_reject_a_bad_query_value_with_a_400_naming_it(string query, string parameter, string value)
    {
        var (status, body) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(parameter, body.GetProperty("parameter").GetString());
        Assert.Contains($"'{value}'", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_of_an_unknown_view_are_a_404_with_close_names()
    {
        var (status, body) = await _client.GetJsonAsync("/api/entities/refresh/automated/metrics?view_name=mv_descendant_count");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("mv_descendant_counts", body.GetProperty("suggestions").EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task Freshness_lists_the_configured_views_and_reports_one()
    {
        await _client.PostJsonAsync("/api/entities/refresh");

        var (status, body) = await _client.GetJsonAsync("/api/entities/freshness");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(3600, body.GetProperty("stale_after_seconds").GetDouble());
        Assert.Equal(DatabaseFixture.HierarchyViews, body.GetProperty("views").EnumerateArray().Select(v => v.GetProperty("view").GetString()));

        var (oneStatus, one) = await _client.GetJsonAsync("/api/entities/freshness/mv_entity_ancestors");
        Assert.Equal(HttpStatusCode.OK, oneStatus);
        Assert.Equal("mv_entity_ancestors", one.GetProperty("view").GetString());
        Assert.False(one.GetProperty("stale").GetBoolean());
        Assert.Equal("fast", one.GetProperty("rating").GetString());
        Assert.Equal("concurrent", one.GetProperty("mode").GetString());
        Assert.InRange(one.GetProperty("age_seconds").GetDouble(), 0, 300);
        Assert.True(one.GetProperty("duration_ms").GetDouble() > 0);
        var dataAsOf = one.GetProperty("data_as_of").GetDateTimeOffset();
        Assert.True(dataAsOf <= one.GetProperty("refreshed_at").GetDateTimeOffset());
    }

    [Fact]
    public async Task Freshness_of_a_view_never_refreshed_is_stale_and_of_an_unknown_view_a_404()
    {
        var (status, body) = await _client.GetJsonAsync("/api/entities/freshness/public.mv_broken");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("stale").GetBoolean());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("data_as_of").ValueKind);

        var (missing, problem) = await _client.GetJsonAsync("/api/entities/freshness/mv_nothing_like_it");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Equal("mv_nothing_like_it", problem.GetProperty("view").GetString());
    }
}
