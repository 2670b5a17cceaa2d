using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

public sealed class ConcurrencyAndResilienceTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public async Task InitializeAsync() => await db.ExecuteAsync("""
        DROP SCHEMA IF EXISTS res CASCADE;
        CREATE SCHEMA res;
        CREATE TABLE res.settings (name text PRIMARY KEY, sleep_s float8 NOT NULL);
        INSERT INTO res.settings VALUES ('slow', 0), ('overlap', 0), ('locked', 0), ('endless', 0);
        CREATE MATERIALIZED VIEW res.slow AS
            SELECT 1 AS id FROM res.settings s, LATERAL (SELECT pg_sleep(s.sleep_s)) z WHERE s.name = 'slow';
        CREATE MATERIALIZED VIEW res.overlap AS
            SELECT 1 AS id FROM res.settings s, LATERAL (SELECT pg_sleep(s.sleep_s)) z WHERE s.name = 'overlap';
        CREATE MATERIALIZED VIEW res.locked AS SELECT 1 AS id;
        CREATE MATERIALIZED VIEW res.endless AS
            SELECT 1 AS id FROM res.settings s, LATERAL (SELECT pg_sleep(s.sleep_s)) z WHERE s.name = 'endless';
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    private Task SetSleepAsync(string view, double seconds) => db.ExecuteAsync("UPDATE res.settings SET sleep_s = $1 WHERE name = $2", seconds, view);

    private Task WaitUntilRefreshingAsync(string view) => DatabaseFixture.EventuallyAsync(
        async () => await RefreshingBackendAsync(view) is not null, $"the refresh of res.{view} to be running on the server");

    private async Task<int?> RefreshingBackendAsync(string view)
    {
        // The backend that holds the view's refresh lock and is running a statement.
        await using var command = db.DataSource.CreateCommand("""
            SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted AND l.mode IN ('ExclusiveLock', 'AccessExclusiveLock')
               AND a.state = 'active' AND l.pid <> pg_backend_pid()
             LIMIT 1
            """);
        command.Parameters.Add(new() { Value = $"res.{view}" });
        return await command.ExecuteScalarAsync() as int?;
    }

    [Fact]
    public async Task Two_refreshers_on_two_connections_never_overlap_on_one_view()
    {
        await SetSleepAsync("overlap", 0.15);
        var first = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();
        var second = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();
        var target = RefreshTarget.View("res.overlap");

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => (i % 2 == 0 ? first : second).RefreshAsync(target)));

        Assert.All(results, r => Assert.True(r.Success, r.Error?.ToString()));
        var runs = new List<(DateTime Start, DateTime End)>();
        await using (var command = db.DataSource.CreateCommand(
            "SELECT started_at, started_at + duration_ms * interval '1 ms' FROM matview_refresh.refresh_history WHERE target = 'res.overlap' AND success ORDER BY started_at"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                runs.Add((reader.GetDateTime(0), reader.GetDateTime(1)));
            }
        }

        Assert.Equal(6, runs.Count);
        for (var i = 1; i < runs.Count; i++)
        {
            Assert.True(runs[i - 1].End <= runs[i].Start, $"run {i - 1} ({runs[i - 1].Start:O}..{runs[i - 1].End:O}) overlaps run {i} (from {runs[i].Start:O})");
        }
    }

    [Fact]
    public async Task Skip_if_busy_coalesces_into_the_refresh_already_running_on_another_instance()
    {
        await SetSleepAsync("slow", 1.0);
        // The other instance has run its schema script already: on a loaded machine that script alone can outlast the 1 s refresh.
        var other = db.CreateServices();
        await other.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        var running = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("res.slow"));
        await WaitUntilRefreshingAsync("slow");

        var coalesced = await other.GetRequiredService<IMaterializedViewRefresher>()
            .RefreshAsync(RefreshTarget.View("res.slow"), new RefreshOptions { SkipIfBusy = true });

        Assert.Equal(RefreshOutcome.Coalesced, coalesced.Outcome);
        Assert.True(coalesced.Coalesced);
        Assert.Null(coalesced.Error);
        Assert.True((await running).Success);
    }

    [Fact]
    public async Task A_terminated_backend_is_retried_and_the_refresh_succeeds()
    {
        await SetSleepAsync("slow", 0.5);
        var logs = new RecordingLoggerProvider();
        var refresher = db.CreateServices(logs: logs).GetRequiredService<IMaterializedViewRefresher>();
        var refresh = refresher.RefreshAsync(RefreshTarget.View("res.slow"));
        await WaitUntilRefreshingAsync("slow");

        var pid = await RefreshingBackendAsync("slow");
        Assert.True(await db.ScalarAsync<bool>("SELECT pg_terminate_backend($1)", pid));
        var result = await refresh;

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(2, result.Attempts);
        Assert.Contains(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.RefreshRetrying && e.Message.Contains("57P01"));
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT attempts FROM matview_refresh.refresh_history WHERE target = 'res.slow' ORDER BY id DESC LIMIT 1"));
    }

    [Fact]
    public async Task A_lock_held_past_lock_timeout_is_retried_until_it_is_released()
    {
        var logs = new RecordingLoggerProvider();
        var refresher = db.CreateServices(o => o.MaxRetryAttempts = 50, logs: logs).GetRequiredService<IMaterializedViewRefresher>();
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        // A reader's ACCESS SHARE lock, held to the end of its transaction, blocks a full refresh.
        await using (var lockCommand = new NpgsqlCommand("SELECT count(*) FROM res.locked", holder, transaction))
        {
            await lockCommand.ExecuteNonQueryAsync();
        }

        var refresh = refresher.RefreshAsync(RefreshTarget.View("res.locked"), new RefreshOptions { LockTimeout = TimeSpan.FromMilliseconds(50) });
        await logs.WhenLogged(MatViewRefreshEventIds.RefreshRetrying);
        await transaction.RollbackAsync();
        var result = await refresh;

        Assert.True(result.Success, result.Error?.ToString());
        Assert.True(result.Attempts >= 2);
        Assert.Contains(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.RefreshRetrying && e.Message.Contains("55P03"));
    }

    [Fact]
    public async Task Lock_timeout_failures_end_as_a_recorded_failure_when_retries_run_out()
    {
        var refresher = db.CreateServices(o => o.MaxRetryAttempts = 2).GetRequiredService<IMaterializedViewRefresher>();
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        // A reader's ACCESS SHARE lock, held to the end of its transaction, blocks a full refresh.
        await using (var lockCommand = new NpgsqlCommand("SELECT count(*) FROM res.locked", holder, transaction))
        {
            await lockCommand.ExecuteNonQueryAsync();
        }

        var result = await refresher.RefreshAsync(RefreshTarget.View("res.locked"), new RefreshOptions { LockTimeout = TimeSpan.FromMilliseconds(30), Trigger = "lock-test" });
        await transaction.RollbackAsync();

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal(3, result.Attempts);
        Assert.Equal("55P03", result.Error!.SqlState);
        var freshness = await db.CreateServices().GetRequiredService<IRefreshLog>().GetFreshnessAsync(RefreshTarget.View("res.locked"));
        Assert.Equal("55P03", freshness!.LastErrorSqlState);
    }

    [Fact]
    public async Task Statement_timeout_stops_a_long_refresh_and_is_not_retried()
    {
        await SetSleepAsync("endless", 30);
        var refresher = db.CreateServices(o => o.MaxRetryAttempts = 3).GetRequiredService<IMaterializedViewRefresher>();

        var result = await refresher.RefreshAsync(RefreshTarget.View("res.endless"), new RefreshOptions { StatementTimeout = TimeSpan.FromMilliseconds(300) });

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal("57014", result.Error!.SqlState);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Cancelling_the_token_stops_the_statement_on_the_server()
    {
        await SetSleepAsync("endless", 60);
        using var cancellation = new CancellationTokenSource();
        var refresh = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>()
            .RefreshAsync(RefreshTarget.View("res.endless"), cancellationToken: cancellation.Token);
        await WaitUntilRefreshingAsync("endless");

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => refresh);
        await DatabaseFixture.EventuallyAsync(
            async () => await RefreshingBackendAsync("endless") is null,
            "the server to stop the cancelled refresh",
            TimeSpan.FromSeconds(10));
    }
}
