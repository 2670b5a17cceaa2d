namespace MatViewRefresh.Cli.Tests;

/// <summary>list, status/freshness and history: their tables, their --json shapes and their exit codes.</summary>
public sealed class ReadCommandTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task List_shows_size_rows_populated_concurrent_capability_dependencies_and_freshness()
    {
        await db.ExecuteAsync(Sample.Sql("l1") + "CREATE MATERIALIZED VIEW l1.mv_empty AS SELECT 1 AS x WITH NO DATA; ANALYZE l1.mv_daily;");
        Assert.Equal(0, (await db.RunAsync("refresh", "--views", "l1.mv_daily")).ExitCode);

        var run = await db.RunAsync("list", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var views = run.Json.GetProperty("views").EnumerateArray().ToDictionary(v => v.GetProperty("view").GetString()!);
        var daily = views["l1.mv_daily"];
        Assert.Equal("l1", daily.GetProperty("schema").GetString());
        Assert.Equal("mv_daily", daily.GetProperty("name").GetString());
        Assert.True(daily.GetProperty("size_bytes").GetInt64() > 0);
        Assert.Equal(20, daily.GetProperty("estimated_rows").GetInt64());
        Assert.True(daily.GetProperty("populated").GetBoolean());
        Assert.True(daily.GetProperty("concurrent_capable").GetBoolean());
        Assert.Equal(["l1.orders"], daily.GetProperty("depends_on").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal("concurrent", daily.GetProperty("last_mode").GetString());
        Assert.True(daily.GetProperty("data_age_seconds").GetDouble() >= 0);
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, daily.GetProperty("last_refreshed_at").ValueKind);

        Assert.Equal(["l1.mv_daily"], views["l1.mv_weekly"].GetProperty("depends_on").EnumerateArray().Select(d => d.GetString()));
        Assert.False(views["l1.mv_plain"].GetProperty("concurrent_capable").GetBoolean());
        Assert.Equal("no unique index", views["l1.mv_plain"].GetProperty("not_concurrent_because").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, views["l1.mv_plain"].GetProperty("last_refreshed_at").ValueKind);
        Assert.False(views["l1.mv_empty"].GetProperty("populated").GetBoolean());
        Assert.StartsWith("view is not populated", views["l1.mv_empty"].GetProperty("not_concurrent_because").GetString());

        var text = await db.RunAsync("list");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("l1.mv_plain", text.Out);
        Assert.Contains("no: no unique index", text.Out);
        Assert.Contains("never", text.Out);
        Assert.Contains("materialized view(s).", text.Out);
    }

    [Fact]
    public async Task Status_exits_1_for_never_refreshed_stale_or_failed_views_and_0_when_all_are_fresh()
    {
        await db.ExecuteAsync(Sample.Sql("s1") + """
            CREATE TABLE s1.flag (broken boolean);
            INSERT INTO s1.flag VALUES (false);
            CREATE MATERIALIZED VIEW s1.mv_fragile AS SELECT 1 / (CASE WHEN broken THEN 0 ELSE 1 END) AS x FROM s1.flag;
            """);

        var never = await db.RunAsync("status", "--schema", "s1", "--json");
        Assert.True(never.ExitCode == 1, never.ToString());
        Assert.All(never.Json.GetProperty("views").EnumerateArray(), v => Assert.Equal("never", v.GetProperty("status").GetString()));

        Assert.Equal(0, (await db.RunAsync("refresh", "--schema", "s1")).ExitCode);
        var fresh = await db.RunAsync("freshness", "--schema", "s1", "--max-age", "1h");
        Assert.True(fresh.ExitCode == 0, fresh.ToString());
        Assert.Contains("All 4 view(s) fresh (max age 1h 00m)", fresh.Out);

        await CliDatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<bool>("SELECT clock_timestamp() - min(data_as_of) > interval '50 milliseconds' FROM matview_refresh.refresh_log WHERE target LIKE 's1.%'"),
            "the data to age past 50 ms");
        var stale = await db.RunAsync("status", "--views", "s1.mv_daily", "--max-age", "50ms", "--json");
        Assert.True(stale.ExitCode == 1, stale.ToString());
        var view = Assert.Single(stale.Json.GetProperty("views").EnumerateArray());
        Assert.Equal("stale", view.GetProperty("status").GetString());
        Assert.True(view.GetProperty("age_seconds").GetDouble() > 0.05);
        Assert.Equal(0.05, stale.Json.GetProperty("max_age_seconds").GetDouble());
        Assert.False(stale.Json.GetProperty("ok").GetBoolean());

        await db.ExecuteAsync("UPDATE s1.flag SET broken = true");
        Assert.Equal(1, (await db.RunAsync("refresh", "--views", "s1.mv_fragile")).ExitCode);
        var failed = await db.RunAsync("status", "--views", "s1.mv_fragile", "s1.mv_daily");
        Assert.True(failed.ExitCode == 1, failed.ToString());
        Assert.Contains("failed", failed.Out);
        Assert.Contains("division by zero", failed.Out);
        Assert.Contains("1 of 2 view(s) stale, failed or never refreshed", failed.Out);
    }

    [Fact]
    public async Task History_lists_runs_newest_first_with_a_p50_p95_p99_summary_filtered_by_view_since_and_limit()
    {
        await db.ExecuteAsync(Sample.Sql("h1"));
        Assert.Equal(0, (await db.RunAsync("refresh", "--schema", "h1")).ExitCode);
        Assert.Equal(0, (await db.RunAsync("refresh", "--views", "h1.mv_daily", "--full")).ExitCode);

        var run = await db.RunAsync("history", "--view", "h1.mv_daily", "--since", "1h", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var runs = run.Json.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Equal("h1.mv_daily", r.GetProperty("view").GetString()));
        Assert.Equal("full", runs[0].GetProperty("mode").GetString());
        Assert.Equal("concurrent", runs[1].GetProperty("mode").GetString());
        Assert.True(runs[0].GetProperty("success").GetBoolean());
        Assert.Equal("cli", runs[0].GetProperty("trigger").GetString());
        var summary = run.Json.GetProperty("summary");
        Assert.Equal(2, summary.GetProperty("count").GetInt64());
        Assert.Equal(100, summary.GetProperty("success_rate").GetDouble());
        Assert.True(summary.GetProperty("p50_ms").GetDouble() > 0);
        Assert.True(summary.GetProperty("p99_ms").GetDouble() >= summary.GetProperty("p95_ms").GetDouble());

        var limited = await db.RunAsync("history", "--limit", "1", "--json");
        Assert.Single(limited.Json.GetProperty("runs").EnumerateArray());

        var text = await db.RunAsync("history", "--view", "h1.mv_weekly");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("h1.mv_weekly", text.Out);
        Assert.Contains("1 run(s): 1 ok, 0 failed (100% success); p50", text.Out);
        Assert.Contains("p95", text.Out);
        Assert.Contains("p99", text.Out);
    }
}
