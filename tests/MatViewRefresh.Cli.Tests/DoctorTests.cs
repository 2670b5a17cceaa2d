using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Cli.Tests;

public sealed class DoctorTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task Doctor_suggests_the_unique_index_that_enables_concurrent_refresh_and_reports_log_pg_cron_and_history()
    {
        await db.ExecuteAsync(Sample.Sql("d1"));
        var before = await db.RunAsync("doctor", "--json", "--log-schema", "d1_log");
        Assert.True(before.ExitCode == 1, before.ToString());
        Assert.Equal("missing", before.Json.GetProperty("log_schema").GetProperty("state").GetString());

        Assert.Equal(0, (await db.RunAsync("refresh", "--views", "d1.mv_daily", "--log-schema", "d1_log")).ExitCode);
        var run = await db.RunAsync("doctor", "--json", "--log-schema", "d1_log");

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json;
        var plain = Assert.Single(json.GetProperty("not_concurrent").EnumerateArray(), v => v.GetProperty("view").GetString() == "d1.mv_plain");
        Assert.Equal("CREATE UNIQUE INDEX ON d1.mv_plain (id);", plain.GetProperty("suggested_index").GetString());
        Assert.Contains("d1.mv_plain", json.GetProperty("never_refreshed").EnumerateArray().Select(v => v.GetString()));
        Assert.DoesNotContain("d1.mv_daily", json.GetProperty("never_refreshed").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal("current", json.GetProperty("log_schema").GetProperty("state").GetString());
        Assert.False(json.GetProperty("pg_cron").GetProperty("installed").GetBoolean());
        Assert.True(json.GetProperty("history").GetProperty("rows").GetInt64() >= 1);
        Assert.Equal(30, json.GetProperty("history").GetProperty("retention_days").GetDouble());
        Assert.Empty(json.GetProperty("blocked_sessions").EnumerateArray());

        // The suggestion works: with the index, the view refreshes concurrently.
        await db.ExecuteAsync("CREATE UNIQUE INDEX ON d1.mv_plain (id)");
        var refresh = await db.RunAsync("refresh", "--views", "d1.mv_plain", "--json", "--log-schema", "d1_log");
        Assert.Equal("concurrent", refresh.Json.GetProperty("results")[0].GetProperty("mode").GetString());

        var text = await db.RunAsync("doctor", "--log-schema", "d1_log");
        Assert.Contains("Blocked sessions (pg_blocking_pids)", text.Out);
        Assert.Contains("Schema d1_log: current.", text.Out);
        Assert.Contains("pg_cron", text.Out);

        // A log schema made by an older version (an object of this version's script missing) is outdated; a refresh updates it.
        await db.ExecuteAsync("DROP FUNCTION d1_log.prune_history(interval); ALTER TABLE d1_log.refresh_history DROP COLUMN data_as_of");
        var outdated = await db.RunAsync("doctor", "--json", "--log-schema", "d1_log");
        Assert.True(outdated.ExitCode == 1, outdated.ToString());
        var log = outdated.Json.GetProperty("log_schema");
        Assert.Equal("outdated", log.GetProperty("state").GetString());
        Assert.Equal(["column refresh_history.data_as_of", "routine prune_history()"], log.GetProperty("missing").EnumerateArray().Select(m => m.GetString()).Order());
        Assert.Equal(0, (await db.RunAsync("refresh", "--views", "d1.mv_daily", "--log-schema", "d1_log")).ExitCode);
        Assert.Equal("current", (await db.RunAsync("doctor", "--json", "--log-schema", "d1_log")).Json.GetProperty("log_schema").GetProperty("state").GetString());
    }

    [Fact]
    public async Task Doctor_lists_watched_targets_waiting_durable_requests_and_a_watched_table_that_lost_its_triggers()
    {
        await db.ExecuteAsync(Sample.Sql("d3"));
        var services = new ServiceCollection()
            .AddMatViewRefresh(o => { o.ConnectionString = db.ConnectionString; o.Schema = "d3_log"; })
            .BuildServiceProvider();
        await using (services)
        {
            await services.GetRequiredService<IRefreshWatcher>().WatchAsync(RefreshTarget.View("d3.mv_daily"));
        }

        // A writer (no app running, so no worker) leaves a request waiting; it was requested 20 minutes ago.
        await db.ExecuteAsync("INSERT INTO d3.orders VALUES (1000, DATE '2026-01-02', 5)");
        await db.ExecuteAsync("UPDATE d3_log.refresh_requests SET requested_at = clock_timestamp() - interval '20 minutes'");

        var run = await db.RunAsync("doctor", "--json", "--log-schema", "d3_log");
        var watch = Assert.Single(run.Json.GetProperty("watches").EnumerateArray());
        Assert.Equal("d3.mv_daily", watch.GetProperty("target").GetString());
        var table = Assert.Single(watch.GetProperty("tables").EnumerateArray());
        Assert.Equal(("d3.orders", true), (table.GetProperty("table").GetString(), table.GetProperty("triggers_installed").GetBoolean()));
        var pending = Assert.Single(run.Json.GetProperty("pending_requests").EnumerateArray());
        Assert.Equal(("d3.mv_daily", 1L), (pending.GetProperty("target").GetString(), pending.GetProperty("requests").GetInt64()));
        Assert.Contains(run.Json.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("1 durable request(s) for d3.mv_daily have waited 20", StringComparison.Ordinal));

        // The table is re-created: its triggers are gone, which is a problem (exit 1) naming the target and the table.
        await db.ExecuteAsync("DROP TABLE d3.orders CASCADE; CREATE TABLE d3.orders (id int PRIMARY KEY, day date NOT NULL, amount int NOT NULL)");
        var lost = await db.RunAsync("doctor", "--log-schema", "d3_log");
        Assert.True(lost.ExitCode == 1, lost.ToString());
        Assert.Contains("d3.mv_daily is watched on d3.orders, but that table has no capture triggers", lost.Out);
        Assert.Contains("Change capture and durable requests", lost.Out);
    }

    [Fact]
    public async Task Doctor_finds_a_refresh_blocked_by_a_session_with_both_pids_the_age_and_the_query()
    {
        await db.ExecuteAsync(Sample.Sql("d2"));
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        await using (var read = new NpgsqlCommand("SELECT count(*) FROM d2.mv_plain", holder, transaction))
        {
            await read.ExecuteScalarAsync();
        }

        var holderPid = holder.ProcessID;
        using var refresh = db.Start("refresh", "--views", "d2.mv_plain", "--full", "--lock-timeout", "2m");
        try
        {
            await CliDatabaseFixture.EventuallyAsync(
                async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", holderPid) > 0,
                "the refresh to wait for the reader's lock");

            var run = await db.RunAsync("doctor", "--json");

            Assert.True(run.ExitCode == 1, run.ToString());
            var blocked = Assert.Single(run.Json.GetProperty("blocked_sessions").EnumerateArray());
            Assert.True(blocked.GetProperty("involves_refresh").GetBoolean());
            Assert.True(blocked.GetProperty("blocked").GetProperty("is_refresh").GetBoolean());
            Assert.Contains("refresh_view", blocked.GetProperty("blocked").GetProperty("query").GetString());
            var by = Assert.Single(blocked.GetProperty("blocked_by").EnumerateArray());
            Assert.Equal(holderPid, by.GetProperty("pid").GetInt32());
            Assert.Equal("idle in transaction", by.GetProperty("state").GetString());
            Assert.Contains("d2.mv_plain", by.GetProperty("query").GetString());
            Assert.True(by.GetProperty("transaction_age_seconds").GetDouble() >= 0);
            var running = Assert.Single(run.Json.GetProperty("running_refreshes").EnumerateArray());
            Assert.Equal(["d2.mv_plain"], running.GetProperty("views").EnumerateArray().Select(v => v.GetString()));
            Assert.True(running.GetProperty("waiting_for_lock").GetBoolean());
            Assert.Contains(run.Json.GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains($"blocked by pid(s) {holderPid}", StringComparison.Ordinal));

            var text = await db.RunAsync("doctor");
            Assert.Contains(holderPid.ToString(System.Globalization.CultureInfo.InvariantCulture), text.Out);
            Assert.Contains("waiting for a lock", text.Out);
            Assert.Contains("d2.mv_plain", text.Out);
        }
        finally
        {
            await transaction.RollbackAsync();
        }

        var done = await Cli.WaitAsync(refresh, TimeSpan.FromSeconds(60));
        Assert.True(done.ExitCode == 0, done.ToString());
        Assert.Contains("1 refreshed", done.Out);
    }
}
