using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>
/// Its own throwaway PostgreSQL 15 with pg_cron loaded (shared_preload_libraries), running jobs in background workers, with
/// cron.database_name = the test database. Fails (never skips) when pg_cron is not installed: scripts/setup.sh installs it.
/// </summary>
public sealed class PgCronFixture : IAsyncLifetime
{
    public const string DatabaseName = "mvr_cron";

    private ThrowawayPostgres? _server;
    private readonly List<ServiceProvider> _providers = [];

    public string ConnectionString { get; private set; } = string.Empty;

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(d => File.Exists(Path.Combine(d, "lib", "pg_cron.so"))).Order().LastOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException(
                "pg_cron is not installed (no /usr/lib/postgresql/*/lib/pg_cron.so): run scripts/setup.sh, or apt-get install postgresql-15-cron.");
        }

        var options = new ThrowawayPostgresOptions { ConnectionString = null, BinDirectory = Path.Combine(bin, "bin") };
        options.ServerSettings["shared_preload_libraries"] = "pg_cron";
        options.ServerSettings["cron.database_name"] = DatabaseName;
        options.ServerSettings["cron.use_background_workers"] = "on";
        options.ServerSettings["max_worker_processes"] = "32";
        _server = await ThrowawayPostgres.StartAsync(options);
        ConnectionString = await _server.CreateDatabaseAsync(DatabaseName);
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var command = DataSource.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_cron");
        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }

        if (DataSource is not null)
        {
            await DataSource.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    public ServiceProvider CreateServices(Action<MatViewRefreshOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(ConnectionString));
        services.AddMatViewRefresh(o => configure?.Invoke(o));
        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return provider;
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }
}

public sealed class DatabaseSchedulingTests(PgCronFixture db) : IClassFixture<PgCronFixture>, IAsyncLifetime
{
    private const string QuotedView = "it's a \"view\" ü \\ x";

    public Task InitializeAsync() => db.ExecuteAsync($"""
        CREATE SCHEMA IF NOT EXISTS cronsales;
        CREATE TABLE IF NOT EXISTS cronsales.orders (id int PRIMARY KEY, amount int);
        CREATE MATERIALIZED VIEW IF NOT EXISTS cronsales.totals AS SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM cronsales.orders;
        CREATE MATERIALIZED VIEW IF NOT EXISTS cronsales.{QuotedIdentifier(QuotedView)} AS SELECT n * 2 AS twice FROM cronsales.totals;
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    private static string QuotedIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private IDatabaseRefreshScheduler Scheduler() => db.CreateServices().GetRequiredService<IDatabaseRefreshScheduler>();

    [Fact]
    public async Task Schedule_creates_one_named_job_and_scheduling_again_updates_it_in_place()
    {
        var scheduler = Scheduler();
        var first = await scheduler.ScheduleInDatabaseAsync("upsert", "0 3 * * *", RefreshSelection.Views("cronsales.totals"), RefreshMode.Full);

        Assert.Equal("matview_refresh:upsert", first.JobName);
        Assert.Equal("upsert", first.Name);
        Assert.Equal("0 3 * * *", first.Cron);
        Assert.Equal(PgCronFixture.DatabaseName, first.Database);
        Assert.True(first.Active);
        Assert.Equal("CALL matview_refresh.refresh('{{cronsales,totals,cronsales.totals}}'::text[], 'full', 'matview_refresh:upsert', '30000ms')", first.Command);
        Assert.Equal(first.Command, await db.ScalarAsync<string>("SELECT command FROM cron.job WHERE jobname = 'matview_refresh:upsert'"));

        var second = await scheduler.ScheduleInDatabaseAsync("upsert", "*/5 * * * *", RefreshSelection.Views("cronsales.totals"));

        Assert.Equal(first.JobId, second.JobId);
        Assert.Equal("*/5 * * * *", second.Cron);
        Assert.Contains("'auto'", second.Command, StringComparison.Ordinal);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM cron.job WHERE jobname = 'matview_refresh:upsert'"));

        Assert.True(await scheduler.UnscheduleInDatabaseAsync("upsert"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM cron.job WHERE jobname = 'matview_refresh:upsert'"));
        Assert.False(await scheduler.UnscheduleInDatabaseAsync("upsert"));
        Assert.DoesNotContain(await scheduler.GetDatabaseSchedulesAsync(), s => s.Name == "upsert");
    }

    [Fact]
    public async Task The_job_command_holds_the_views_in_dependency_order_as_safe_literals()
    {
        var scheduler = Scheduler();
        await scheduler.ScheduleInDatabaseAsync(
            "quoting", "0 4 * * *", RefreshSelection.Views(RefreshTarget.View("cronsales", QuotedView), RefreshTarget.View("cronsales", "totals")));
        // The stored command's first argument, evaluated by the server as pg_cron will: exactly the names and log targets, dependencies first.
        var literal = await db.ScalarAsync<string>(
            "SELECT (regexp_match(command, '^CALL matview_refresh\\.refresh\\((.*)::text\\[\\], ''auto'', ''matview_refresh:quoting'', ''30000ms''\\)$'))[1] FROM cron.job WHERE jobname = 'matview_refresh:quoting'");
        var parsed = await db.ScalarAsync<string[,]>($"SELECT {literal}::text[]");
        Assert.Equal(2, parsed.GetLength(0));
        Assert.Equal(["cronsales", "totals", "cronsales.totals"], new[] { parsed[0, 0], parsed[0, 1], parsed[0, 2] });
        Assert.Equal(["cronsales", QuotedView, "cronsales." + QuotedIdentifier(QuotedView)], new[] { parsed[1, 0], parsed[1, 1], parsed[1, 2] });
        Assert.True(await scheduler.UnscheduleInDatabaseAsync("quoting"));
    }

    [Fact]
    public async Task A_scheduled_job_really_runs_and_writes_the_log_and_history_with_the_schedule_as_trigger()
    {
        var scheduler = Scheduler();
        await db.ExecuteAsync("INSERT INTO cronsales.orders VALUES (1, 10), (2, 32) ON CONFLICT DO NOTHING");
        var schedule = await scheduler.ScheduleInDatabaseAsync(
            "every-minute", "* * * * *", RefreshSelection.Views(RefreshTarget.View("cronsales", QuotedView), RefreshTarget.View("cronsales", "totals")));
        try
        {
            // pg_cron 1.4 fires on whole minutes: the run comes within 60 s (bounded poll, no fixed sleep).
            await DatabaseFixture.EventuallyAsync(
                async () => await db.ScalarAsync<long>(
                    "SELECT count(*) FROM cron.job_run_details WHERE jobid = $1 AND status IN ('succeeded', 'failed')", schedule.JobId) > 0,
                "the pg_cron job to run", TimeSpan.FromSeconds(90));

            var listed = Assert.Single(await scheduler.GetDatabaseSchedulesAsync(), s => s.Name == "every-minute");
            var run = listed.LastRuns[0];
            Assert.Equal("succeeded", run.Status);
            Assert.Equal("CALL", run.Message);
            Assert.NotNull(run.StartedAt);
            Assert.NotNull(run.FinishedAt);

            Assert.Equal(42, await db.ScalarAsync<int>("SELECT total::int FROM cronsales.totals"));
            Assert.Equal(4L, await db.ScalarAsync<long>($"SELECT twice FROM cronsales.{QuotedIdentifier(QuotedView)}"));
            foreach (var target in new[] { "cronsales.totals", "cronsales." + QuotedIdentifier(QuotedView) })
            {
                Assert.True(await db.ScalarAsync<long>(
                    "SELECT count(*) FROM matview_refresh.refresh_history WHERE target = $1 AND success AND trigger = 'matview_refresh:every-minute'", target) > 0,
                    target);
                Assert.Equal(1L, await db.ScalarAsync<long>(
                    "SELECT count(*) FROM matview_refresh.refresh_log WHERE target = $1 AND last_refreshed_at IS NOT NULL AND last_error IS NULL", target));
            }

            // Dependencies first: the dependent's first refresh started after the base's.
            Assert.True(await db.ScalarAsync<bool>(
                "SELECT (SELECT min(id) FROM matview_refresh.refresh_history WHERE target = 'cronsales.totals' AND trigger = 'matview_refresh:every-minute') " +
                "< (SELECT min(id) FROM matview_refresh.refresh_history WHERE target = $1 AND trigger = 'matview_refresh:every-minute')",
                "cronsales." + QuotedIdentifier(QuotedView)));
        }
        finally
        {
            await scheduler.UnscheduleInDatabaseAsync("every-minute");
        }
    }

    [Fact]
    public async Task Bad_names_bad_schedules_and_other_time_zones_are_refused_naming_the_value()
    {
        var scheduler = Scheduler();
        var selection = RefreshSelection.Views("cronsales.totals");

        var badCron = await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ScheduleInDatabaseAsync("bad-cron", "every tuesday", selection));
        Assert.Contains("'every tuesday'", badCron.Message, StringComparison.Ordinal);
        Assert.Equal("cron", badCron.ParamName);

        var badName = await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ScheduleInDatabaseAsync("x'; DROP TABLE y", "* * * * *", selection));
        Assert.Equal("name", badName.ParamName);
        await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ScheduleInDatabaseAsync("", "* * * * *", selection));

        var zone = await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ScheduleInDatabaseAsync("chicago", "0 3 * * *", selection, timeZone: "America/Chicago"));
        Assert.Contains("GMT", zone.Message, StringComparison.Ordinal);
        Assert.Contains("'America/Chicago'", zone.Message, StringComparison.Ordinal);
        Assert.Equal("timeZone", zone.ParamName);
        await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ScheduleInDatabaseAsync("nowhere", "0 3 * * *", selection, timeZone: "Mars/Olympus_Mons"));

        foreach (var utc in new[] { "UTC", "Etc/UTC", "GMT" })
        {
            var ok = await scheduler.ScheduleInDatabaseAsync("utc", "0 3 * * *", selection, timeZone: utc);
            Assert.Equal("0 3 * * *", ok.Cron);
        }

        Assert.True(await scheduler.UnscheduleInDatabaseAsync("utc"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM cron.job WHERE jobname IN ('matview_refresh:bad-cron', 'matview_refresh:chicago', 'matview_refresh:nowhere')"));
    }

    [Fact]
    public async Task A_selection_with_no_views_is_refused()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS cron_empty");
        var e = await Assert.ThrowsAsync<ArgumentException>(
            () => Scheduler().ScheduleInDatabaseAsync("empty", "* * * * *", RefreshSelection.Schemas("cron_empty")));
        Assert.Equal("selection", e.ParamName);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM cron.job WHERE jobname = 'matview_refresh:empty'"));
    }

    [Fact]
    public async Task Unknown_views_are_refused_before_anything_is_scheduled()
    {
        await Assert.ThrowsAsync<MaterializedViewNotFoundException>(
            () => Scheduler().ScheduleInDatabaseAsync("missing", "* * * * *", RefreshSelection.Views("cronsales.nope")));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM cron.job WHERE jobname = 'matview_refresh:missing'"));
    }
}
