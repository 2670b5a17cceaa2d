using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class RefreshLogTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync() => await db.ExecuteAsync("""
        DROP SCHEMA IF EXISTS logged CASCADE;
        CREATE SCHEMA logged;
        CREATE TABLE logged.items (id int PRIMARY KEY);
        INSERT INTO logged.items SELECT generate_series(1, 7);
        CREATE TABLE logged.flags (fail boolean NOT NULL);
        INSERT INTO logged.flags VALUES (false);
        CREATE FUNCTION logged.check_source() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT fail FROM logged.flags) THEN RAISE EXCEPTION 'source table is being rebuilt'; END IF;
            RETURN 0;
        END $$;
        CREATE MATERIALIZED VIEW logged.counted AS SELECT id + logged.check_source() AS id FROM logged.items;
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task The_log_and_history_match_the_refresh_result()
    {
        using var services = db.CreateServices(o => o.RecordRowCount = true);
        var target = RefreshTarget.View("logged.counted");

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(target, new RefreshOptions { Trigger = "nightly" });
        var log = services.GetRequiredService<IRefreshLog>();
        var freshness = await log.GetFreshnessAsync(target);
        var history = await log.GetHistoryAsync(limit: 1, target: target);

        Assert.True(result.Success, result.Error?.ToString());
        Assert.NotNull(freshness);
        Assert.Equal(result.RefreshedAt, freshness.RefreshedAt);
        Assert.Equal(result.ServerDuration, freshness.Duration);
        Assert.Equal("full", freshness.Mode);
        Assert.Equal(7L, freshness.RowCount);
        Assert.Equal(7L, result.RowCount);
        Assert.Null(freshness.LastError);
        Assert.Equal(RefreshRating.Fast, freshness.Rating);
        Assert.False(freshness.IsStale(TimeSpan.FromMinutes(1)));
        var entry = Assert.Single(history);
        Assert.True(entry.Success);
        Assert.Equal("full", entry.Mode);
        Assert.Equal("nightly", entry.Trigger);
        Assert.Equal(1, entry.Attempts);
        Assert.Equal(result.ServerDuration, entry.Duration);
        Assert.Equal(result.RefreshedAt!.Value, entry.StartedAt + entry.Duration, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_failed_refresh_records_the_error_and_attempt_without_moving_last_refreshed_at()
    {
        using var services = db.CreateServices();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        var log = services.GetRequiredService<IRefreshLog>();
        var target = RefreshTarget.View("logged.counted");
        var ok = await refresher.RefreshAsync(target);
        await db.ExecuteAsync("UPDATE logged.flags SET fail = true");

        var failed = await refresher.RefreshAsync(target, new RefreshOptions { Trigger = "ingest" });
        var freshness = await log.GetFreshnessAsync(target);
        var last = (await log.GetHistoryAsync(limit: 1, target: target))[0];

        Assert.Equal(RefreshOutcome.Failed, failed.Outcome);
        Assert.Equal(ok.RefreshedAt, freshness!.RefreshedAt);
        Assert.Equal("P0001", freshness.LastErrorSqlState);
        Assert.Contains("source table is being rebuilt", freshness.LastError);
        Assert.True(freshness.LastAttemptAt > freshness.RefreshedAt);
        Assert.False(last.Success);
        Assert.Equal("ingest", last.Trigger);
        Assert.Equal("P0001", last.ErrorSqlState);
        Assert.Contains("source table is being rebuilt", last.ErrorMessage);
    }

    [Fact]
    public async Task A_view_never_refreshed_has_no_freshness()
    {
        using var services = db.CreateServices();

        Assert.Null(await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(RefreshTarget.View("logged.never")));
    }

    [Fact]
    public async Task Freshness_reports_age_on_the_database_clock_rating_and_staleness()
    {
        using var services = db.CreateServices();
        var log = services.GetRequiredService<IRefreshLog>();
        await log.EnsureSchemaAsync();
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_log (target, scope, last_refreshed_at, duration_ms, mode, last_attempt_at)
            VALUES ('aged.view', '', now() - interval '10 minutes', 1500, 'full', now() - interval '10 minutes'),
                   ('slow.view', '', now(), 7000, 'concurrent', now())
            ON CONFLICT (target, scope) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at
            """);

        var aged = await log.GetFreshnessAsync(RefreshTarget.View("aged.view"));
        var slow = await log.GetFreshnessAsync(RefreshTarget.View("slow.view"));

        Assert.InRange(aged!.Age!.Value, TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(11));
        Assert.Equal(RefreshRating.Normal, aged.Rating);
        Assert.True(aged.IsStale(TimeSpan.FromMinutes(5)));
        Assert.False(aged.IsStale(TimeSpan.FromHours(1)));
        Assert.Equal(RefreshRating.Slow, slow!.Rating);
    }

    [Fact]
    public async Task Summary_percentiles_equal_a_hand_computation()
    {
        using var services = db.CreateServices();
        var log = services.GetRequiredService<IRefreshLog>();
        await log.EnsureSchemaAsync();
        var random = new Random(42);
        var durations = Enumerable.Range(0, 37).Select(_ => Math.Round(random.NextDouble() * 5000, 3)).ToArray();
        foreach (var d in durations)
        {
            await db.ExecuteAsync(
                "INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, mode, attempts, trigger) VALUES ('stats.view', now(), $1, true, 'full', 1, 'test')", d);
        }

        await db.ExecuteAsync("INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, attempts, trigger, error_message) VALUES ('stats.view', now(), 99999, false, 3, 'test', 'x'), ('stats.view', now(), 1, false, 1, 'test', 'y')");

        var summary = await log.GetSummaryAsync(RefreshTarget.View("stats.view"));

        var sorted = durations.Order().ToArray();
        static double Percentile(double[] s, double p)
        {
            var rank = p * (s.Length - 1);
            var lower = (int)Math.Floor(rank);
            var upper = (int)Math.Ceiling(rank);
            return s[lower] + ((s[upper] - s[lower]) * (rank - lower));
        }

        Assert.Equal(39, summary.Count);
        Assert.Equal(37, summary.Successes);
        Assert.Equal(2, summary.Failures);
        Assert.Equal(100.0 * 37 / 39, summary.SuccessRate!.Value, 9);
        Assert.Equal(durations.Average(), summary.Average!.Value.TotalMilliseconds, 3);
        Assert.Equal(Percentile(sorted, 0.50), summary.P50!.Value.TotalMilliseconds, 3);
        Assert.Equal(Percentile(sorted, 0.95), summary.P95!.Value.TotalMilliseconds, 3);
        Assert.Equal(Percentile(sorted, 0.99), summary.P99!.Value.TotalMilliseconds, 3);
        Assert.Equal(sorted[0], summary.Min!.Value.TotalMilliseconds, 3);
        Assert.Equal(sorted[^1], summary.Max!.Value.TotalMilliseconds, 3);
    }

    [Fact]
    public async Task History_filters_by_target_since_and_limit_newest_first()
    {
        using var services = db.CreateServices();
        var log = services.GetRequiredService<IRefreshLog>();
        await log.EnsureSchemaAsync();
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, attempts, trigger)
            SELECT 'filter.view', timestamptz '2026-01-01 00:00Z' + g * interval '1 hour', g, true, 1, 'test' FROM generate_series(1, 10) g
            """);

        var recent = await log.GetHistoryAsync(limit: 3, target: RefreshTarget.View("filter.view"), since: new DateTimeOffset(2026, 1, 1, 5, 0, 0, TimeSpan.Zero));
        var all = await log.GetHistoryAsync(limit: 100, target: RefreshTarget.View("filter.view"));

        Assert.Equal([10.0, 9.0, 8.0], recent.Select(e => e.Duration.TotalMilliseconds));
        Assert.Equal(10, all.Count);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.GetHistoryAsync(limit: 0));
    }

    [Fact]
    public async Task History_older_than_the_retention_is_pruned_by_refreshes()
    {
        using var services = db.CreateServices(o => o.HistoryRetention = TimeSpan.FromDays(7));
        await services.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_history (target, started_at, duration_ms, success, attempts, trigger)
            VALUES ('old.view', now() - interval '8 days', 1, true, 1, 'test'), ('recent.view', now() - interval '6 days', 1, true, 1, 'test')
            """);

        await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("logged.counted"));

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'old.view'"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'recent.view'"));
    }

    [Fact]
    public async Task The_log_lives_in_the_configured_schema_and_installing_it_twice_at_once_is_harmless()
    {
        using var first = db.CreateServices(o => o.Schema = "Refresh Log");
        using var second = db.CreateServices(o => o.Schema = "Refresh Log");

        await Task.WhenAll(first.GetRequiredService<IRefreshLog>().EnsureSchemaAsync(), second.GetRequiredService<IRefreshLog>().EnsureSchemaAsync());
        var result = await first.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("logged.counted"));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM \"Refresh Log\".refresh_log WHERE target = 'logged.counted'"));
        Assert.NotNull(await second.GetRequiredService<IRefreshLog>().GetFreshnessAsync(RefreshTarget.View("logged.counted")));
    }

    [Fact]
    public async Task The_shipped_script_creates_the_same_schema_and_can_run_again()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "schema.sql"));

        await db.ExecuteAsync(script.Replace("\"matview_refresh\"", "\"scripted\""));
        await db.ExecuteAsync(script.Replace("\"matview_refresh\"", "\"scripted\""));
        using var services = db.CreateServices(o =>
        {
            o.Schema = "scripted";
            o.AutoCreateSchema = false;
        });
        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("logged.counted"));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM scripted.refresh_history"));
    }
}
