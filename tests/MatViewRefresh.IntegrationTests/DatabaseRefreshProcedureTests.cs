using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The SQL side of database scheduling: lock_key and the refresh procedure pg_cron jobs call.</summary>
public sealed class DatabaseRefreshProcedureTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await db.CreateServices().GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        await db.ExecuteAsync(""""
            CREATE SCHEMA IF NOT EXISTS "Proc Sales";
            CREATE TABLE IF NOT EXISTS "Proc Sales".src (x int);
            CREATE MATERIALIZED VIEW IF NOT EXISTS "Proc Sales"."it's ""ok""" AS SELECT count(*) AS n FROM "Proc Sales".src;
            CREATE MATERIALIZED VIEW IF NOT EXISTS "Proc Sales".broken AS SELECT 1 / (SELECT count(*) FROM "Proc Sales".src WHERE x > 100)::int AS x WITH NO DATA;
            CREATE MATERIALIZED VIEW IF NOT EXISTS "Proc Sales".after AS SELECT count(*) AS n FROM "Proc Sales".src;
            """");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Theory]
    [InlineData("public", "daily", "")]
    [InlineData("Sales Data", "it's \"quoted\" and spaced", "")]
    [InlineData("ünïcødé", "日本語のビュー 🚀", "")]
    [InlineData("marts", "refresh_daily", "day_local=2025-11-08&user_id=42")]
    public async Task The_sql_lock_key_equals_the_library_key(string schema, string name, string scope)
    {
        var target = scope.Length == 0
            ? RefreshTarget.View(schema, name)
            : RefreshTarget.Function($"{schema}.{name}", ("day_local", new DateOnly(2025, 11, 8)), ("user_id", 42));
        Assert.Equal(scope, target.Scope);
        Assert.Equal(RefreshSql.LockKey(target), await db.ScalarAsync<long>("SELECT matview_refresh.lock_key($1, $2, $3)", schema, name, scope));
    }

    [Fact]
    public async Task The_procedure_refreshes_each_view_in_its_own_transaction_records_failures_and_goes_on()
    {
        await db.ExecuteAsync("INSERT INTO \"Proc Sales\".src VALUES (1), (2), (3)");
        await db.ExecuteAsync(
            "CALL matview_refresh.refresh($1, 'auto', 'proc-test')",
            new[,]
            {
                { "Proc Sales", "it's \"ok\"", "\"Proc Sales\".\"it's \"\"ok\"\"\"" },
                { "Proc Sales", "broken", "\"Proc Sales\".broken" },
                { "Proc Sales", "gone", "\"Proc Sales\".gone" },
                { "Proc Sales", "after", "\"Proc Sales\".after" },
            });

        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT n FROM \"Proc Sales\".\"it's \"\"ok\"\"\""));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT n FROM \"Proc Sales\".after"));
        var log = db.CreateServices().GetRequiredService<IRefreshLog>();
        var history = await log.GetHistoryAsync(limit: 100);
        var ours = history.Where(h => h.Trigger == "proc-test").ToDictionary(h => h.Target);
        Assert.True(ours["\"Proc Sales\".\"it's \"\"ok\"\"\""].Success);
        Assert.True(ours["\"Proc Sales\".after"].Success);
        Assert.False(ours["\"Proc Sales\".broken"].Success);
        Assert.Equal("22012", ours["\"Proc Sales\".broken"].ErrorSqlState);
        Assert.Equal("MVR02", ours["\"Proc Sales\".gone"].ErrorSqlState);

        var freshness = await log.GetFreshnessAsync(RefreshTarget.View("Proc Sales", "it's \"ok\""));
        Assert.NotNull(freshness);
        Assert.NotNull(freshness!.DataAsOf);
        Assert.Equal("22012", await db.ScalarAsync<string>("SELECT last_error_state FROM matview_refresh.refresh_log WHERE target = '\"Proc Sales\".broken'"));
    }
}
