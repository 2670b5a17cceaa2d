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

    [Theory]
    [InlineData("read committed")]
    [InlineData("repeatable read")]
    public async Task A_row_is_in_the_view_exactly_when_it_committed_before_data_as_of(string isolation)
    {
        // The refresh waits for another instance's refresh of the view (its advisory lock); one row commits before the
        // refresh starts, another while it waits. data_as_of must tell them apart under either isolation level.
        var table = "hard.rows_" + isolation.Replace(' ', '_');
        await db.ExecuteAsync($"DROP TABLE IF EXISTS {table} CASCADE; CREATE TABLE {table} (id int PRIMARY KEY); CREATE MATERIALIZED VIEW {table}_mv AS SELECT id FROM {table}");
        var connection = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Options = "-c default_transaction_isolation=" + isolation.Replace(" ", "\\ ", StringComparison.Ordinal) }.ConnectionString;
        var target = RefreshTarget.View(table + "_mv");
        using var services = db.CreateServices(more: s => s.AddSingleton(NpgsqlDataSource.Create(connection)));
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using (var hold = new NpgsqlCommand("SELECT pg_advisory_lock($1)", holder) { Parameters = { new() { Value = RefreshSql.LockKey(target) } } })
        {
            await hold.ExecuteNonQueryAsync();
        }

        await db.ExecuteAsync($"INSERT INTO {table} VALUES (1)");
        var before = await db.ScalarAsync<DateTime>("SELECT clock_timestamp()");
        var refresh = services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(target);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") > 0,
            "the refresh to wait for the view's lock");
        await db.ExecuteAsync($"INSERT INTO {table} VALUES (2)");
        var during = await db.ScalarAsync<DateTime>("SELECT clock_timestamp()");
        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", holder))
        {
            await release.ExecuteNonQueryAsync();
        }

        var result = await refresh.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(result.Success, result.Error?.ToString());
        var asOf = result.DataAsOf!.Value.UtcDateTime;
        var visible = new HashSet<int>();
        await using (var read = db.DataSource.CreateCommand($"SELECT id FROM {table}_mv"))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                visible.Add(reader.GetInt32(0));
            }
        }

        Assert.Equal(before < asOf, visible.Contains(1));
        Assert.Equal(during < asOf, visible.Contains(2));
        Assert.Contains(1, visible);
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
    public async Task Reading_a_damaged_log_re_creates_it_instead_of_failing_until_restart()
    {
        using var services = db.CreateServices();
        var log = services.GetRequiredService<IRefreshLog>();
        Assert.True((await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("hard.plain"))).Success);

        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_log; DROP TABLE matview_refresh.refresh_history");

        Assert.Null(await log.GetFreshnessAsync(RefreshTarget.View("hard.plain")));
        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_history");
        Assert.Empty(await log.GetHistoryAsync());
        await db.ExecuteAsync("DROP SCHEMA matview_refresh CASCADE");
        Assert.Equal(0, (await log.GetSummaryAsync()).Count);
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
    public async Task With_AutoCreateSchema_off_a_damaged_log_is_reported_not_repaired()
    {
        using var services = db.CreateServices();
        Assert.True((await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("hard.plain"))).Success);
        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_history");
        try
        {
            var result = await db.CreateServices(o => o.AutoCreateSchema = false).GetRequiredService<IMaterializedViewRefresher>()
                .RefreshAsync(RefreshTarget.View("hard.plain"));

            Assert.Equal(RefreshOutcome.Failed, result.Outcome);
            Assert.Equal("42P01", result.Error!.SqlState);
            Assert.Contains("matview_refresh.refresh_history", result.Error.Message);
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE schemaname = 'matview_refresh' AND tablename = 'refresh_history'"));
        }
        finally
        {
            await services.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        }
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

    [Fact]
    public async Task When_the_prepared_statement_is_gone_behind_npgsqls_back_the_refresh_is_sent_unprepared_and_succeeds()
    {
        // What a pooler in transaction mode (PgBouncer before 1.21) does: the prepared statement is not on the server connection.
        await using var one = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(db.ConnectionString) { MaxPoolSize = 1 }.ConnectionString);
        var logs = new RecordingLoggerProvider();
        await using var services = new ServiceCollection()
            .AddSingleton(one)
            .AddLogging(b => b.AddProvider(logs))
            .AddMatViewRefresh()
            .BuildServiceProvider();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        Assert.True((await refresher.RefreshAsync(RefreshTarget.View("hard.plain"))).Success);
        await using (var connection = await one.OpenConnectionAsync())
        await using (var deallocate = new NpgsqlCommand("DEALLOCATE ALL", connection))
        {
            await deallocate.ExecuteNonQueryAsync();
        }

        var result = await refresher.RefreshAsync(RefreshTarget.View("hard.plain"));
        var after = await refresher.RefreshAsync(RefreshTarget.View("hard.plain"));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(1, result.Attempts);
        Assert.True(after.Success, after.Error?.ToString());
        Assert.Single(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.PreparedStatementsUnavailable);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
