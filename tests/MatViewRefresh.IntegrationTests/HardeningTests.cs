using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>Defects found by outside checks: honest freshness, a damaged log, the first call with the database down, names without a schema, data sources.</summary>
public sealed class HardeningTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync() => await db.ExecuteAsync("""
        DROP SCHEMA IF EXISTS hard CASCADE;
        DROP SCHEMA IF EXISTS other CASCADE;
        DROP MATERIALIZED VIEW IF EXISTS public.only_in_public;
        CREATE SCHEMA hard;
        CREATE TABLE hard.items (id int PRIMARY KEY, sleep_s float8 NOT NULL DEFAULT 0);
        INSERT INTO hard.items SELECT generate_series(1, 3);
        CREATE MATERIALIZED VIEW hard.slow AS SELECT i.id FROM hard.items i, LATERAL (SELECT pg_sleep(i.sleep_s)) z;
        CREATE MATERIALIZED VIEW hard.plain AS SELECT id FROM hard.items;
        CREATE SCHEMA other;
        CREATE MATERIALIZED VIEW other.plain AS SELECT 42 AS id;
        CREATE MATERIALIZED VIEW public.only_in_public AS SELECT 1 AS id;
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Freshness_counts_from_the_refreshs_snapshot_not_from_when_it_finished()
    {
        await db.ExecuteAsync("UPDATE hard.items SET sleep_s = 0.4"); // three rows: the refresh takes 1.2 s
        using var services = db.CreateServices();
        var target = RefreshTarget.View("hard.slow");

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(target);
        var freshness = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(target);
        var entry = Assert.Single(await services.GetRequiredService<IRefreshLog>().GetHistoryAsync(limit: 1, target: target));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.NotNull(result.DataAsOf);
        Assert.True(result.RefreshedAt - result.DataAsOf >= TimeSpan.FromSeconds(1.1), $"{result.DataAsOf:O} .. {result.RefreshedAt:O}");
        Assert.NotNull(freshness);
        Assert.Equal(result.DataAsOf, freshness.DataAsOf);
        Assert.Equal(result.RefreshedAt, freshness.RefreshedAt);
        Assert.True(freshness.Age >= TimeSpan.FromSeconds(1.1), $"age {freshness.Age} must count from data_as_of");
        Assert.True(freshness.IsStale(TimeSpan.FromSeconds(1)));
        Assert.Equal(result.DataAsOf, entry.DataAsOf);
    }

    [Fact]
    public async Task Data_committed_before_data_as_of_is_in_the_view()
    {
        using var services = db.CreateServices();
        await db.ExecuteAsync("INSERT INTO hard.items (id) VALUES (100)");
        var committed = await db.ScalarAsync<DateTime>("SELECT clock_timestamp()");

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("hard.plain"));

        Assert.True(result.DataAsOf > new DateTimeOffset(committed, TimeSpan.Zero));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM hard.plain WHERE id = 100"));
    }

    [Fact]
    public async Task A_dropped_history_table_is_re_created_by_the_next_refresh_which_succeeds()
    {
        using var services = db.CreateServices();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        Assert.True((await refresher.RefreshAsync(RefreshTarget.View("hard.plain"))).Success);

        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_history");
        var healed = await refresher.RefreshAsync(RefreshTarget.View("hard.plain"));

        Assert.True(healed.Success, healed.Error?.ToString());
        Assert.Equal(1, healed.Attempts);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'hard.plain'"));
        Assert.Contains(db.Logs.Events, e => e.Id.Id == MatViewRefreshEventIds.SchemaRepaired);
    }

    [Fact]
    public async Task A_dropped_log_function_is_re_created_and_EnsureSchemaAsync_really_checks()
    {
        using var services = db.CreateServices();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        var log = services.GetRequiredService<IRefreshLog>();
        Assert.True((await refresher.RefreshAsync(RefreshTarget.View("hard.plain"))).Success);

        await db.ExecuteAsync("DROP FUNCTION matview_refresh.refresh_view");
        Assert.True((await refresher.RefreshAsync(RefreshTarget.View("hard.plain"))).Success);

        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_log");
        await log.EnsureSchemaAsync();
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE schemaname = 'matview_refresh' AND tablename = 'refresh_log'"));
    }

    [Fact]
    public async Task With_the_database_down_the_first_call_is_a_failed_result_after_retries_not_an_exception()
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Port = FreePort(), Timeout = 2 };
        var logs = new RecordingLoggerProvider();
        await using var services = new ServiceCollection()
            .AddLogging(b => b.AddProvider(logs))
            .AddMatViewRefresh(o =>
            {
                o.ConnectionString = builder.ConnectionString;
                o.MaxRetryAttempts = 2;
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(1);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(5);
            })
            .BuildServiceProvider();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();

        var result = await refresher.RefreshAsync(RefreshTarget.View("hard.plain"));
        var batch = await refresher.RefreshManyAsync(RefreshSelection.Schemas("hard"));

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal(3, result.Attempts);
        Assert.Contains("Failed to connect", result.Error!.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(RefreshBatchStatus.Failed, batch.Status);
        Assert.Empty(batch.Results);
        Assert.NotNull(batch.Error);
        Assert.Equal(4, logs.Events.Count(e => e.Id.Id == MatViewRefreshEventIds.RefreshRetrying));
    }

    [Fact]
    public async Task Names_without_a_schema_resolve_to_DefaultSchema_in_refreshes_batches_and_the_log()
    {
        using var services = db.CreateServices(o => o.DefaultSchema = "other");
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();

        var one = await refresher.RefreshAsync(RefreshTarget.View("plain"));
        var batch = await refresher.RefreshManyAsync(RefreshSelection.Views("plain"));
        var freshness = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(RefreshTarget.View("plain"));
        var missing = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => refresher.RefreshAsync(RefreshTarget.View("only_in_public")));

        Assert.Equal("other.plain", one.Target.ToString());
        Assert.Equal("other.plain", Assert.Single(batch.Results).Target.ToString());
        Assert.Equal("other.plain", freshness?.Target);
        Assert.Contains("other.only_in_public", missing.Message);
        // Written with a schema: the default does not apply.
        Assert.Equal("hard.plain", (await refresher.RefreshAsync(RefreshTarget.View("hard.plain"))).Target.ToString());
        // The default default is public.
        Assert.Equal("public.only_in_public", (await db.CreateServices().GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("only_in_public"))).Target.ToString());
    }

    [Fact]
    public async Task A_keyed_data_source_is_used_when_DataSourceKey_names_it()
    {
        await using var keyed = NpgsqlDataSource.Create(db.ConnectionString);
        await using var services = new ServiceCollection()
            .AddSingleton(NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Database=wrong"))
            .AddKeyedSingleton("reporting", keyed)
            .AddMatViewRefresh(o => o.DataSourceKey = "reporting")
            .BuildServiceProvider();

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("hard.plain"));

        Assert.True(result.Success, result.Error?.ToString());
    }

    [Fact]
    public async Task The_data_source_built_from_a_connection_string_logs_through_the_apps_logger_factory()
    {
        var logs = new RecordingLoggerProvider();
        await using var services = new ServiceCollection()
            .AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace))
            .AddMatViewRefresh(o => o.ConnectionString = db.ConnectionString)
            .BuildServiceProvider();

        Assert.True((await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("hard.plain"))).Success);

        Assert.Contains(logs.Categories, c => c.StartsWith("Npgsql", StringComparison.Ordinal));
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
