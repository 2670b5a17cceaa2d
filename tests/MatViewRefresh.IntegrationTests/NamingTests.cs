using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class NamingTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync() => await db.ExecuteAsync(""""
        DROP SCHEMA IF EXISTS "Sales Data" CASCADE;
        CREATE SCHEMA "Sales Data";
        CREATE TABLE "Sales Data"."Orders" (id int PRIMARY KEY);
        INSERT INTO "Sales Data"."Orders" SELECT generate_series(1, 5);
        CREATE MATERIALIZED VIEW "Sales Data"."Daily ""Totals""" AS SELECT count(*) AS n FROM "Sales Data"."Orders";
        CREATE MATERIALIZED VIEW "Sales Data"."MixedCase" AS SELECT count(*) AS n FROM "Sales Data"."Orders";
        CREATE TABLE IF NOT EXISTS public.canary (id int);
        CREATE MATERIALIZED VIEW IF NOT EXISTS public.plain_lower AS SELECT 1 AS one;
        """");

    public Task DisposeAsync() => Task.CompletedTask;

    private IMaterializedViewRefresher Refresher() => db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();

    [Fact]
    public async Task Quoted_names_with_spaces_quotes_and_mixed_case_are_refreshed()
    {
        var refresher = Refresher();
        await db.ExecuteAsync("INSERT INTO \"Sales Data\".\"Orders\" VALUES (6)");

        var byText = await refresher.RefreshAsync(RefreshTarget.View("\"Sales Data\".\"Daily \"\"Totals\"\"\""));
        var byParts = await refresher.RefreshAsync(RefreshTarget.View("Sales Data", "MixedCase"));

        Assert.True(byText.Success, byText.Error?.ToString());
        Assert.True(byParts.Success, byParts.Error?.ToString());
        Assert.Equal("\"Sales Data\".\"Daily \"\"Totals\"\"\"", byText.Target.ToString());
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT n FROM \"Sales Data\".\"Daily \"\"Totals\"\"\""));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_log WHERE target = '\"Sales Data\".\"MixedCase\"'"));
    }

    [Fact]
    public async Task Unquoted_names_fold_to_lower_case_like_postgresql()
    {
        var result = await Refresher().RefreshAsync(RefreshTarget.View("PUBLIC.Plain_Lower"));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal("public.plain_lower", result.Target.ToString());
    }

    [Fact]
    public async Task Unquoted_mixed_case_does_not_match_a_quoted_mixed_case_view_and_the_error_suggests_it()
    {
        var e = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => Refresher().RefreshAsync(RefreshTarget.View("Sales Data", "mixedcase")));

        Assert.Contains("\"Sales Data\".mixedcase", e.Message);
        Assert.Contains(new QualifiedName("Sales Data", "MixedCase"), e.Suggestions);
    }

    [Fact]
    public async Task A_table_is_not_a_materialized_view()
    {
        var e = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => Refresher().RefreshAsync(RefreshTarget.View("public.canary")));

        Assert.Equal("'public.canary' is a table, not a materialized view.", e.Message);
    }

    [Theory]
    [InlineData("public.canary; DROP TABLE public.canary")]
    [InlineData("public.canary--")]
    [InlineData("public.canary/*x*/")]
    [InlineData("a.b.c")]
    [InlineData("x'; DROP TABLE public.canary; --")]
    public void Injection_shaped_text_is_not_a_name(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => RefreshTarget.View(text));

        Assert.Contains(text, e.Message);
    }

    [Theory]
    [InlineData("public", "canary\"; DROP TABLE public.canary; --")]
    [InlineData("public\"; DROP TABLE public.canary; --", "x")]
    public async Task Injection_shaped_quoted_names_resolve_to_nothing_and_nothing_is_executed(string schema, string name)
    {
        var before = await db.ScalarAsync<long>("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");

        await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => Refresher().RefreshAsync(RefreshTarget.View(schema, name)));

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'canary'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REFRESH%canary%'"));
        Assert.True(before >= 0);
    }
}
