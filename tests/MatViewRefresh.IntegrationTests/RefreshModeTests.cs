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
        Assert.Contains("Cannot refresh modes.no_index CONCURRENTLY", result.Error.Message);
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
    public async Task Auto_falls_back_to_full_when_the_server_refuses_concurrently_and_says_why()
    {
        await db.ExecuteAsync("CREATE MATERIALIZED VIEW modes.index_dropped AS SELECT region FROM modes.sales GROUP BY region; CREATE UNIQUE INDEX index_dropped_region ON modes.index_dropped (region)");
        var refresher = Refresher(o => o.CatalogCacheDuration = TimeSpan.FromHours(1));
        var first = await refresher.RefreshAsync(RefreshTarget.View("modes.index_dropped"));
        Assert.Equal(RefreshMode.Concurrent, first.ModeUsed);

        // The cached catalog still says "unique index"; the server now disagrees.
        await db.ExecuteAsync("DROP INDEX modes.index_dropped_region");
        var second = await refresher.RefreshAsync(RefreshTarget.View("modes.index_dropped"));

        Assert.True(second.Success, second.Error?.ToString());
        Assert.Equal(RefreshMode.Full, second.ModeUsed);
        Assert.Equal("fell back to full: no unique index without WHERE on plain columns (55000)", second.ModeReason);
        Assert.Equal(1, second.Attempts);
        Assert.Contains(db.Logs.Events, e => e.Id.Id == MatViewRefreshEventIds.RefreshFellBack && e.Message.Contains("modes.index_dropped"));
        Assert.Equal("full", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_log WHERE target = 'modes.index_dropped'"));
    }
}
