using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

/// <summary>Schedules on a real server and a real clock: several app instances (DI containers) share one database.</summary>
public sealed class SchedulerOnPostgresTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Four_instances_running_a_one_second_schedule_refresh_once_per_tick()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS sched; CREATE MATERIALIZED VIEW IF NOT EXISTS sched.v AS SELECT 1 AS x");
        var instances = Enumerable.Range(0, 4).Select(_ => db.CreateServices(o =>
        {
            o.StartScheduler = false;
            o.Schedules["every_second"] = new RefreshScheduleOptions { Interval = TimeSpan.FromSeconds(1), Views = ["sched.v"], Mode = "Full" };
        })).ToList();
        await instances[0].GetRequiredService<IRefreshLog>().EnsureSchemaAsync(); // so the test can poll schedule_ticks from the start
        var schedulers = instances.Select(i => i.GetRequiredService<IRefreshScheduler>()).ToList();
        await Task.WhenAll(schedulers.Select(s => s.StartAsync()));

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.schedule_ticks WHERE schedule = 'every_second'") >= 4,
            "four ticks claimed",
            TimeSpan.FromSeconds(30));
        var metrics = await Task.WhenAll(schedulers.Select(s => s.StopAsync()));

        var ticks = await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.schedule_ticks WHERE schedule = 'every_second'");
        var runs = await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'every_second' AND target = 'sched.v'");
        var claimers = await db.ScalarAsync<long>("SELECT count(DISTINCT claimed_by) FROM matview_refresh.schedule_ticks WHERE schedule = 'every_second'");
        Assert.True(ticks >= 4, $"{ticks} ticks");
        Assert.Equal(ticks, runs);
        Assert.Equal(ticks, metrics.Sum(m => m.TotalRuns));
        Assert.Equal(ticks, metrics.Sum(m => m.Succeeded));
        Assert.InRange(claimers, 1, 4);
        var elsewhere = schedulers.Sum(s => s.GetStatus()[0].ClaimedElsewhereCount);
        Assert.True(elsewhere >= 3 * (ticks - 1), $"{elsewhere} ticks claimed elsewhere for {ticks} ticks");
    }

    [Fact]
    public async Task A_forced_run_is_in_the_history_with_the_schedule_as_trigger()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS sched; CREATE MATERIALIZED VIEW IF NOT EXISTS sched.w AS SELECT 1 AS x");
        using var services = db.CreateServices(o =>
        {
            o.StartScheduler = false;
            o.Schedules["nightly"] = new RefreshScheduleOptions { Cron = "0 3 * * *", TimeZone = "America/Chicago", Views = ["sched.w"] };
        });
        var scheduler = services.GetRequiredService<IRefreshScheduler>();

        var run = Assert.Single(await scheduler.ForceAsync("nightly"));

        Assert.Equal(RefreshScheduleOutcome.Succeeded, run.Outcome);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'nightly' AND target = 'sched.w'"));
        Assert.False(scheduler.IsStarted);
    }

    [Fact]
    public async Task A_scheduled_smart_window_refresh_runs_full_first_then_incremental_with_the_schedule_as_trigger()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA IF NOT EXISTS sched;
            CREATE MATERIALIZED VIEW IF NOT EXISTS sched.wv AS SELECT 1 AS x;
            CREATE TABLE IF NOT EXISTS sched.facts_w (at timestamptz NOT NULL, amount int NOT NULL);
            CREATE TABLE IF NOT EXISTS sched.daily_w (day date, total bigint);
            INSERT INTO sched.facts_w VALUES (now() - interval '1 hour', 5);
            """);
        using var services = db.CreateServices(o =>
        {
            o.StartScheduler = false;
            o.Schedules["marts_smart"] = new RefreshScheduleOptions
            {
                Interval = TimeSpan.FromSeconds(1),
                MaxCatchUpRuns = 0,
                TimeZone = "America/Chicago",
                Views = ["sched.wv"],
                Strategy = "Smart",
                Days = 2,
                Windows =
                [
                    new RefreshScheduleWindow
                    {
                        Table = "sched.daily_w",
                        DateColumn = "day",
                        Query = "SELECT (at AT TIME ZONE 'America/Chicago')::date, sum(amount) FROM sched.facts_w WHERE (at AT TIME ZONE 'America/Chicago')::date >= @from AND (at AT TIME ZONE 'America/Chicago')::date < @to GROUP BY 1",
                    },
                ],
            };
        });
        var scheduler = services.GetRequiredService<IRefreshScheduler>();
        await scheduler.StartAsync();
        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(scheduler.GetStatus()[0].SucceededCount >= 2), "two scheduled runs to succeed");

        await scheduler.StopAsync();

        var status = scheduler.GetStatus()[0];
        Assert.True(status.SucceededCount >= 2, $"{status.SucceededCount} runs succeeded; last: {status.LastRun?.Error}");
        Assert.Equal(0L, status.FailedCount);
        Assert.Equal(WindowStrategy.Incremental, Assert.Single(status.LastRun!.Windows).StrategyUsed);
        Assert.StartsWith(
            "full,incremental",
            await db.ScalarAsync<string>("SELECT string_agg(mode, ',' ORDER BY id) FROM matview_refresh.refresh_history WHERE target = 'sched.daily_w' AND trigger = 'marts_smart' AND success"),
            StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'sched.daily_w' AND trigger <> 'marts_smart'"));
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'sched.wv' AND trigger = 'marts_smart'") >= 2);
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT total FROM sched.daily_w"));
    }

    [Fact]
    public async Task A_tick_on_another_instance_while_the_schedule_runs_is_skipped_and_counted_then_the_next_runs()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS sched; CREATE MATERIALIZED VIEW IF NOT EXISTS sched.slow AS SELECT 1 AS x FROM (SELECT pg_sleep(4)) AS s WITH NO DATA");
        void Configure(MatViewRefreshOptions o)
        {
            o.StartScheduler = false;
            o.Schedules["slow_lease"] = new RefreshScheduleOptions { Interval = TimeSpan.FromSeconds(1), MaxCatchUpRuns = 0, Views = ["sched.slow"], Mode = "Full" };
        }

        using var first = db.CreateServices(Configure);
        using var second = db.CreateServices(Configure);
        var a = first.GetRequiredService<IRefreshScheduler>();
        var b = second.GetRequiredService<IRefreshScheduler>();

        var slowRun = a.ForceAsync("slow_lease");
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.schedule_runs WHERE schedule = 'slow_lease' AND running_by IS NOT NULL") > 0,
            "the slow run to hold the schedule");

        await b.StartAsync();
        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(b.GetStatus()[0].SkippedTicks > 0), "a skipped tick on the other instance");

        var during = b.GetStatus()[0];
        Assert.False(slowRun.IsCompleted, "the slow run ended before a tick of the other instance");
        Assert.True(during.SkippedTicks >= 1);
        Assert.Equal(0L, during.SucceededCount + during.FailedCount);

        Assert.Equal(RefreshScheduleOutcome.Succeeded, Assert.Single(await slowRun.WaitAsync(TimeSpan.FromSeconds(30))).Outcome);
        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(b.GetStatus()[0].SucceededCount > 0), "a run on the other instance after the slow run");

        await b.StopAsync();
        var after = b.GetStatus()[0];
        Assert.True(after.SucceededCount >= 1, $"no run on the other instance after the slow run; last: {after.LastRun?.Error}");
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.schedule_runs WHERE schedule = 'slow_lease' AND running_by IS NOT NULL"));
    }

    [Fact]
    public async Task A_run_longer_than_its_lease_keeps_the_schedule_by_renewing_the_hold()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS sched; CREATE MATERIALIZED VIEW IF NOT EXISTS sched.slower AS SELECT 1 AS x FROM (SELECT pg_sleep(4)) AS s WITH NO DATA");
        void Configure(MatViewRefreshOptions o)
        {
            o.StartScheduler = false;
            o.Schedules["short_lease"] = new RefreshScheduleOptions
            {
                Interval = TimeSpan.FromSeconds(1), MaxCatchUpRuns = 0, Views = ["sched.slower"], Mode = "Full", RunLease = TimeSpan.FromSeconds(1),
            };
        }

        using var first = db.CreateServices(Configure);
        using var second = db.CreateServices(Configure);
        var b = second.GetRequiredService<IRefreshScheduler>();
        await first.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        const string Holder = "SELECT running_by FROM matview_refresh.schedule_runs WHERE schedule = 'short_lease' AND running_until > now()";

        var slowRun = first.GetRequiredService<IRefreshScheduler>().ForceAsync("short_lease");
        await DatabaseFixture.EventuallyAsync(async () => await db.ScalarAsync<long>($"SELECT count(*) FROM ({Holder}) h") > 0, "the slow run to hold the schedule");
        var holder = await db.ScalarAsync<string>(Holder);
        await b.StartAsync();

        // Past three leases of the slow run, the other instance's ticks are still skipped and the hold is still the first run's.
        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(b.GetStatus()[0].SkippedTicks >= 3), "three skipped ticks on the other instance");
        Assert.False(slowRun.IsCompleted, "the slow run ended too early for the test");
        Assert.Equal(holder, await db.ScalarAsync<string>(Holder));
        Assert.Equal(0L, b.GetStatus()[0].SucceededCount + b.GetStatus()[0].FailedCount);

        Assert.Equal(RefreshScheduleOutcome.Succeeded, Assert.Single(await slowRun.WaitAsync(TimeSpan.FromSeconds(30))).Outcome);
        await b.StopAsync();
    }

    [Fact]
    public async Task A_tick_missed_while_down_is_caught_up_once_by_one_instance()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS sched; CREATE MATERIALIZED VIEW IF NOT EXISTS sched.c AS SELECT 1 AS x");
        ServiceProvider Instance() => db.CreateServices(o =>
        {
            o.StartScheduler = false;
            o.Schedules["hourly_catch_up"] = new RefreshScheduleOptions { Interval = TimeSpan.FromHours(1), Views = ["sched.c"] };
        });
        using var first = Instance();
        await first.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        // Last ran five hours ago; no instance ran since.
        await db.ExecuteAsync(
            "INSERT INTO matview_refresh.schedule_ticks (schedule, tick, claimed_by) VALUES ('hourly_catch_up', date_trunc('hour', now()) - interval '5 hours', 'gone')");

        var a = first.GetRequiredService<IRefreshScheduler>();
        await a.StartAsync();
        using var second = Instance();
        var b = second.GetRequiredService<IRefreshScheduler>();
        await b.StartAsync();
        var metrics = await Task.WhenAll(a.StopAsync(), b.StopAsync());

        Assert.Equal(1, metrics.Sum(m => m.TotalRuns));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'hourly_catch_up'"));
        Assert.Equal(1L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM matview_refresh.schedule_ticks WHERE schedule = 'hourly_catch_up' AND tick > now() - interval '1 hour 1 minute'"));
    }

    [Fact]
    public async Task Status_reports_the_newest_data_timestamp_of_the_refreshed_view()
    {
        await db.ExecuteAsync(
            "CREATE SCHEMA IF NOT EXISTS sched; CREATE TABLE IF NOT EXISTS sched.events (at timestamptz); " +
            "CREATE MATERIALIZED VIEW IF NOT EXISTS sched.daily AS SELECT date_trunc('day', at) AS day, max(at) AS last_event_at FROM sched.events GROUP BY 1 WITH NO DATA; " +
            "INSERT INTO sched.events VALUES ('2026-01-03 12:00:00+00'), ('2026-01-02 08:00:00+00')");
        using var services = db.CreateServices(o =>
        {
            o.StartScheduler = false;
            o.Schedules["freshness"] = new RefreshScheduleOptions { Interval = TimeSpan.FromHours(1), Views = ["sched.daily"], DataTimestampColumn = "sched.daily.last_event_at" };
        });
        var scheduler = services.GetRequiredService<IRefreshScheduler>();

        Assert.Equal(RefreshScheduleOutcome.Succeeded, Assert.Single(await scheduler.ForceAsync()).Outcome);

        var status = Assert.Single(scheduler.GetStatus());
        Assert.Equal(new DateTimeOffset(2026, 1, 3, 12, 0, 0, TimeSpan.Zero), status.DataAsOf);
        Assert.True(status.DataBehind > TimeSpan.FromDays(1));
    }
}
