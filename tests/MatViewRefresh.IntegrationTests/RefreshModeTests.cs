using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class RefreshModeTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync() => await db.ExecuteAsync("""
        DROP SCHEMA IF EXISTS modes CASCADE;
        CREATE SCHEMA modes;
        CREATE TABLE modes.sales (id int PRIMARY KEY, region text NOT NULL, amount numeric NOT NULL);
        INSERT INTO modes.sales SELECT g, 'r' || (g % 3), g FROM generate_series(1, 30) g;
        CREATE MATERIALIZED VIEW modes.with_index AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region;
        CREATE UNIQUE INDEX ON modes.with_index (region);
        CREATE MATERIALIZED VIEW modes.no_index AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region;
        CREATE MATERIALIZED VIEW modes.partial_index AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region;
        CREATE UNIQUE INDEX ON modes.partial_index (region) WHERE region <> 'x';
        CREATE MATERIALIZED VIEW modes.expression_index AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region;
        CREATE UNIQUE INDEX ON modes.expression_index (lower(region));
        CREATE MATERIALIZED VIEW modes.unpopulated AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region WITH NO DATA;
        CREATE UNIQUE INDEX ON modes.unpopulated (region);
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    private IMaterializedViewRefresher Refresher(Action<MatViewRefreshOptions>? configure = null) =>
        db.CreateServices(configure).GetRequiredService<IMaterializedViewRefresher>();

    [Fact]
    public async Task Full_refresh_picks_up_new_rows()
    {
        await db.ExecuteAsync("INSERT INTO modes.sales VALUES (100, 'r1', 1000)");

        var result = await Refresher().RefreshAsync(RefreshTarget.View("modes.no_index"), new RefreshOptions { Mode = RefreshMode.Full });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(RefreshMode.Full, result.ModeUsed);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(
            await db.ScalarAsync<decimal>("SELECT sum(amount) FROM modes.sales WHERE region = 'r1'"),
            await db.ScalarAsync<decimal>("SELECT total FROM modes.no_index WHERE region = 'r1'"));
    }

    [Fact]
    public async Task Concurrent_refresh_runs_concurrently_on_a_view_with_a_unique_index()
    {
        var result = await Refresher().RefreshAsync(RefreshTarget.View("modes.with_index"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(RefreshMode.Concurrent, result.ModeUsed);
        var history = await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_history WHERE target = 'modes.with_index' ORDER BY id DESC LIMIT 1");
        Assert.Equal("concurrent", history);
    }

    [Fact]
    public async Task Auto_chooses_concurrent_when_the_view_is_populated_and_has_a_usable_unique_index()
    {
        var result = await Refresher().RefreshAsync(RefreshTarget.View("modes.with_index"));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(RefreshMode.Auto, result.RequestedMode);
        Assert.Equal(RefreshMode.Concurrent, result.ModeUsed);
        Assert.Contains("unique index", result.ModeReason);
    }

    [Theory]
    [InlineData("modes.no_index")]
    [InlineData("modes.partial_index")]
    [InlineData("modes.expression_index")]
    public async Task Auto_chooses_full_when_no_unique_index_is_usable(string view)
    {
        var result = await Refresher().RefreshAsync(RefreshTarget.View(view));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(RefreshMode.Full, result.ModeUsed);
        Assert.Equal("auto chose full: no unique index without WHERE on plain columns", result.ModeReason);
    }

    [Fact]
    public async Task Auto_refreshes_an_unpopulated_view_in_full_and_then_concurrently()
    {
        await db.ExecuteAsync("REFRESH MATERIALIZED VIEW modes.unpopulated WITH NO DATA");
        var refresher = Refresher();

        var first = await refresher.RefreshAsync(RefreshTarget.View("modes.unpopulated"));
        var second = await refresher.RefreshAsync(RefreshTarget.View("modes.unpopulated"));

        Assert.Equal(RefreshMode.Full, first.ModeUsed);
        Assert.Equal("auto chose full: view is not populated", first.ModeReason);
        Assert.Equal(RefreshMode.Concurrent, second.ModeUsed);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM modes.unpopulated"));
    }

    [Fact]
    public async Task Explicit_concurrent_without_a_unique_index_fails_clearly_and_is_not_retried()
    {
        var result = await Refresher(o => o.MaxRetryAttempts = 5).RefreshAsync(RefreshTarget.View("modes.no_index"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal(1, result.Attempts);
        Assert.Equal("55000", result.Error!.SqlState);
        Assert.StartsWith("cannot refresh materialized view \"modes.no_index\" concurrently", result.Error.Message); // PostgreSQL's words first
        Assert.Contains("modes.no_index cannot be refreshed CONCURRENTLY: no unique index", result.Error.Message);
        Assert.Contains("RefreshMode.Auto", result.Error.Message);
    }

    [Fact]
    public async Task Explicit_concurrent_on_an_unpopulated_view_fails_clearly()
    {
        await db.ExecuteAsync("CREATE MATERIALIZED VIEW modes.empty_for_concurrent AS SELECT 1 AS id WITH NO DATA; CREATE UNIQUE INDEX ON modes.empty_for_concurrent (id)");

        var result = await Refresher().RefreshAsync(RefreshTarget.View("modes.empty_for_concurrent"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal("0A000", result.Error!.SqlState);
        Assert.Contains("not populated", result.Error.Message);
    }

    [Fact]
    public async Task Auto_decides_from_the_catalog_as_it_is_now_an_index_created_or_dropped_since_the_last_refresh_counts_at_once()
    {
        await db.ExecuteAsync("CREATE MATERIALIZED VIEW modes.index_changes AS SELECT region FROM modes.sales GROUP BY region");
        var refresher = Refresher(o => o.CatalogCacheDuration = TimeSpan.FromHours(1));
        var before = await refresher.RefreshAsync(RefreshTarget.View("modes.index_changes"));
        Assert.Equal(RefreshMode.Full, before.ModeUsed);

        await db.ExecuteAsync("CREATE UNIQUE INDEX index_changes_region ON modes.index_changes (region)");
        var created = await refresher.RefreshAsync(RefreshTarget.View("modes.index_changes"));

        await db.ExecuteAsync("DROP INDEX modes.index_changes_region");
        var dropped = await refresher.RefreshAsync(RefreshTarget.View("modes.index_changes"));

        Assert.Equal(RefreshMode.Concurrent, created.ModeUsed);
        Assert.Equal("auto chose concurrent: view is populated and has a usable unique index", created.ModeReason);
        Assert.True(dropped.Success, dropped.Error?.ToString());
        Assert.Equal(RefreshMode.Full, dropped.ModeUsed);
        Assert.Equal("auto chose full: no unique index without WHERE on plain columns", dropped.ModeReason);
        Assert.Equal(1, dropped.Attempts);
        Assert.Equal("full", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_log WHERE target = 'modes.index_changes'"));
    }

    [Fact]
    public async Task A_view_that_reads_an_unpopulated_view_fails_with_postgresqls_message_and_no_false_fallback()
    {
        await db.ExecuteAsync("""
            CREATE MATERIALIZED VIEW modes.upstream AS SELECT region, sum(amount) AS total FROM modes.sales GROUP BY region;
            CREATE MATERIALIZED VIEW modes.downstream AS SELECT region, total FROM modes.upstream;
            CREATE UNIQUE INDEX ON modes.downstream (region);
            CREATE MATERIALIZED VIEW modes.downstream_no_index AS SELECT region, total FROM modes.upstream;
            REFRESH MATERIALIZED VIEW modes.upstream WITH NO DATA;
            """);
        var refresher = Refresher(o => o.MaxRetryAttempts = 3);

        var auto = await refresher.RefreshAsync(RefreshTarget.View("modes.downstream"));
        var concurrent = await refresher.RefreshAsync(RefreshTarget.View("modes.downstream"), new RefreshOptions { Mode = RefreshMode.Concurrent });
        var autoChoseFull = await refresher.RefreshAsync(RefreshTarget.View("modes.downstream_no_index"));

        foreach (var result in new[] { auto, concurrent, autoChoseFull })
        {
            Assert.Equal(RefreshOutcome.Failed, result.Outcome);
            Assert.Equal(1, result.Attempts);
            Assert.Equal("55000", result.Error!.SqlState);
            Assert.StartsWith("materialized view \"upstream\" has not been populated", result.Error.Message);
            Assert.DoesNotContain("unique index", result.Error.Message, StringComparison.OrdinalIgnoreCase);
        }

        Assert.DoesNotContain("fell back", auto.ModeReason ?? string.Empty);
        Assert.DoesNotContain("fell back", autoChoseFull.ModeReason ?? string.Empty);
        Assert.DoesNotContain(db.Logs.Events, e => e.Id.Id == MatViewRefreshEventIds.RefreshFellBack && e.Message.Contains("modes.downstream"));
    }

    [Fact]
    public async Task A_dropped_view_is_not_found_the_same_way_in_a_warm_and_a_fresh_app()
    {
        await db.ExecuteAsync("CREATE MATERIALIZED VIEW modes.to_drop AS SELECT 1 AS id");
        var warm = Refresher();
        Assert.True((await warm.RefreshAsync(RefreshTarget.View("modes.to_drop"))).Success);

        await db.ExecuteAsync("DROP MATERIALIZED VIEW modes.to_drop; CREATE TABLE modes.to_drop (id int)");
        var fromWarm = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => warm.RefreshAsync(RefreshTarget.View("modes.to_drop")));
        var fromFresh = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => Refresher().RefreshAsync(RefreshTarget.View("modes.to_drop")));

        Assert.Equal(fromFresh.Message, fromWarm.Message);
        Assert.Equal("'modes.to_drop' is a table, not a materialized view.", fromWarm.Message);
    }
}
