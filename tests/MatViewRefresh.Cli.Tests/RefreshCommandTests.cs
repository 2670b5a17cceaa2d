namespace MatViewRefresh.Cli.Tests;

public sealed class RefreshCommandTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task Refresh_of_a_schema_shows_each_view_as_it_finishes_and_a_summary_in_dependency_order()
    {
        await db.ExecuteAsync(Sample.Sql("r1"));

        var run = await db.RunAsync("refresh", "--schema", "r1", "--parallel", "2");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("ok  r1.mv_daily: concurrent in", run.Out);
        Assert.Contains("ok  r1.mv_plain: full in", run.Out);
        Assert.Contains("ok  r1.mv_weekly: concurrent in", run.Out);
        Assert.True(run.Out.IndexOf("ok  r1.mv_daily", StringComparison.Ordinal) < run.Out.IndexOf("... r1.mv_weekly", StringComparison.Ordinal), run.ToString());
        Assert.Contains("3 refreshed, 0 failed, 0 skipped", run.Out);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target LIKE 'r1.%' AND success AND trigger = 'cli'"));
    }

    [Fact]
    public async Task Refresh_json_reports_status_and_one_result_per_view_with_mode_and_reason()
    {
        await db.ExecuteAsync(Sample.Sql("r2"));

        var run = await db.RunAsync("refresh", "--views", "r2.mv_daily", "r2.mv_plain", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json;
        Assert.Equal("success", json.GetProperty("status").GetString());
        Assert.Equal(2, json.GetProperty("refreshed").GetInt32());
        var results = json.GetProperty("results").EnumerateArray().ToDictionary(r => r.GetProperty("view").GetString()!);
        Assert.Equal("concurrent", results["r2.mv_daily"].GetProperty("mode").GetString());
        Assert.Equal("full", results["r2.mv_plain"].GetProperty("mode").GetString());
        Assert.Contains("no unique index", results["r2.mv_plain"].GetProperty("mode_reason").GetString());
        Assert.Equal("succeeded", results["r2.mv_plain"].GetProperty("outcome").GetString());
        Assert.True(results["r2.mv_plain"].GetProperty("duration_ms").GetDouble() >= 0);
    }

    [Fact]
    public async Task Dry_run_prints_the_dependency_ordered_plan_with_modes_and_refreshes_nothing()
    {
        await db.ExecuteAsync(Sample.Sql("r3"));

        var run = await db.RunAsync("refresh", "--views", "r3.mv_daily", "--include-dependents", "--full", "--dry-run", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var steps = run.Json.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(["r3.mv_daily", "r3.mv_weekly"], steps.Select(s => s.GetProperty("view").GetString()));
        Assert.Equal("full", steps[0].GetProperty("mode").GetString());
        Assert.Equal("full refresh requested", steps[0].GetProperty("reason").GetString());
        Assert.True(steps[1].GetProperty("is_dependent").GetBoolean());
        Assert.Equal(["r3.mv_daily"], steps[1].GetProperty("depends_on").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target LIKE 'r3.%'"));

        var text = await db.RunAsync("refresh", "--schema", "r3", "--dry-run");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("auto chose full: no unique index", text.Out);
        Assert.Contains("3 view(s) would be refreshed in 2 level(s)", text.Out);
    }

    [Fact]
    public async Task A_failing_view_fails_its_dependents_are_skipped_and_the_exit_code_is_1()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA r4;
            CREATE TABLE r4.t (n int);
            INSERT INTO r4.t VALUES (1);
            CREATE MATERIALIZED VIEW r4.mv_ok AS SELECT n FROM r4.t;
            CREATE MATERIALIZED VIEW r4.mv_bad AS SELECT 1 / (SELECT count(*)::int - 1 FROM r4.t) AS x WITH NO DATA;
            CREATE MATERIALIZED VIEW r4.mv_after_bad AS SELECT x FROM r4.mv_bad WITH NO DATA;
            """);

        var run = await db.RunAsync("refresh", "--schema", "r4", "--json");

        Assert.True(run.ExitCode == 1, run.ToString());
        var json = run.Json;
        Assert.Equal("partial_success", json.GetProperty("status").GetString());
        var results = json.GetProperty("results").EnumerateArray().ToDictionary(r => r.GetProperty("view").GetString()!);
        Assert.Equal("succeeded", results["r4.mv_ok"].GetProperty("outcome").GetString());
        Assert.Equal("failed", results["r4.mv_bad"].GetProperty("outcome").GetString());
        Assert.Equal("22012", results["r4.mv_bad"].GetProperty("error_sqlstate").GetString());
        Assert.Equal("skipped", results["r4.mv_after_bad"].GetProperty("outcome").GetString());

        var text = await db.RunAsync("refresh", "--views", "r4.mv_bad");
        Assert.Equal(1, text.ExitCode);
        Assert.Contains("division by zero", text.Out);
        Assert.Contains("0 refreshed, 1 failed", text.Out);
    }
}
