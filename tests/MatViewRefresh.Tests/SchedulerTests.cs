using MatViewRefresh.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

public sealed class SchedulerTests
{
    private static readonly TimeZoneInfo Chicago = TimeZoneInfo.FindSystemTimeZoneById("America/Chicago");

    private static RefreshScheduleOptions Every(TimeSpan interval) => new() { Interval = interval, Views = ["sales.daily"] };

    [Fact]
    public async Task Interval_ticks_are_on_an_epoch_grid_and_run_with_the_schedule_name_as_trigger_and_its_mode()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.Mode = "concurrent";
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("minutely", schedule));
        await scheduler.StartAsync();

        Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 1, 0, TimeSpan.Zero), scheduler.GetStatus()[0].NextRunUtc);
        time.Step(TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(10));

        Assert.Equal(3, refresher.Batches.Count);
        Assert.All(refresher.Batches, b => Assert.Equal("minutely", b.Options.Trigger));
        Assert.All(refresher.Batches, b => Assert.Equal(RefreshMode.Concurrent, b.Options.Mode));
        Assert.Equal([10 * 60 + 1, 10 * 60 + 2, 10 * 60 + 3], refresher.Batches.Select(b => (b.At.Hour * 60) + b.At.Minute));
        var status = scheduler.GetStatus()[0];
        Assert.Equal(3, status.SucceededCount);
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 3, 0, TimeSpan.Zero), status.LastRun!.Tick);
        Assert.Equal(TimeSpan.FromMinutes(1), status.Interval);
    }

    [Fact]
    public async Task A_tick_refreshes_the_views_then_each_window_with_the_schedule_strategy_days_zone_and_trigger()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var schedule = new RefreshScheduleOptions
        {
            Interval = TimeSpan.FromMinutes(1),
            MaxCatchUpRuns = 0,
            Views = ["sales.daily"],
            TimeZone = "America/Chicago",
            Strategy = "incremental",
            Days = 3,
            FullRefreshAfter = TimeSpan.FromHours(6),
            Windows =
            [
                new RefreshScheduleWindow { Table = "marts.daily_sales", DateColumn = "day", Query = "SELECT day FROM s WHERE day >= @from AND day < @to" },
                new RefreshScheduleWindow { Table = "marts.hourly", DateColumn = "at", Query = "SELECT at FROM s WHERE at >= @from AND at < @to" },
            ],
        };
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("marts", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(10));

        Assert.Single(refresher.Batches);
        Assert.Equal(["marts.daily_sales", "marts.hourly"], refresher.Targets.Select(t => t.Target.ToString()));
        Assert.All(refresher.Targets, t =>
        {
            Assert.Equal(RefreshTargetKind.Window, t.Target.Kind);
            Assert.Equal(WindowStrategy.Incremental, t.Options.Strategy);
            Assert.Equal(3, t.Options.Days);
            Assert.Equal("America/Chicago", t.Options.TimeZone);
            Assert.Equal(TimeSpan.FromHours(6), t.Options.FullRefreshAfter);
            Assert.Equal("marts", t.Options.Trigger);
            Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 1, 0, TimeSpan.Zero), t.At);
        });
        var last = scheduler.GetStatus()[0].LastRun!;
        Assert.Equal(RefreshScheduleOutcome.Succeeded, last.Outcome);
        Assert.Equal(2, last.Windows.Count);
    }

    [Fact]
    public async Task A_schedule_of_windows_only_runs_no_batch_and_defaults_to_smart()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var schedule = new RefreshScheduleOptions
        {
            Interval = TimeSpan.FromMinutes(1),
            MaxCatchUpRuns = 0,
            Windows = [new RefreshScheduleWindow { Table = "daily_sales", DateColumn = "day", Query = "SELECT day FROM s WHERE day >= @from AND day < @to" }],
        };
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("marts", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(10));

        Assert.Empty(refresher.Batches);
        Assert.Equal(2, refresher.Targets.Count);
        Assert.All(refresher.Targets, t => Assert.Equal(WindowStrategy.Smart, t.Options.Strategy));
        Assert.All(refresher.Targets, t => Assert.Equal("UTC", t.Options.TimeZone));
        Assert.Equal(2, scheduler.GetStatus()[0].SucceededCount);
    }

    [Fact]
    public async Task Cron_in_a_DST_zone_runs_once_a_day_across_the_spring_gap()
    {
        // 2026-03-08 02:30 does not exist in Chicago (02:00 CST -> 03:00 CDT): that day's run is at 03:00 CDT.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 6, 12, 0, 0, TimeSpan.FromHours(-6)));
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("nightly", new RefreshScheduleOptions { Cron = "30 2 * * *", TimeZone = "America/Chicago", Schemas = ["sales"] }));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromDays(4), TimeSpan.FromMinutes(10));

        var local = refresher.Batches.Select(b => TimeZoneInfo.ConvertTime(b.At, Chicago)).ToList();
        Assert.Equal(4, local.Count);
        Assert.Equal([7, 8, 9, 10], local.Select(l => l.Day));
        Assert.Equal(new DateTimeOffset(2026, 3, 8, 8, 0, 0, TimeSpan.Zero), refresher.Batches.ElementAt(1).At);
        Assert.Equal(new DateTimeOffset(2026, 3, 9, 7, 30, 0, TimeSpan.Zero), refresher.Batches.ElementAt(2).At);
    }

    [Fact]
    public async Task Cron_in_a_DST_zone_runs_once_in_the_autumn_overlap_and_misses_no_day()
    {
        // 2026-11-01 01:30 happens twice in Chicago (CDT, then CST): one run, at the first.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 10, 30, 12, 0, 0, TimeSpan.FromHours(-5)));
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("nightly", new RefreshScheduleOptions { Cron = "30 1 * * *", TimeZone = "America/Chicago", Views = ["a"] }));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromDays(4), TimeSpan.FromMinutes(10));

        Assert.Equal(
            [
                new DateTimeOffset(2026, 10, 31, 6, 30, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 11, 1, 6, 30, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 11, 2, 7, 30, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 11, 3, 7, 30, 0, TimeSpan.Zero),
            ],
            refresher.Batches.Select(b => b.At));
        var status = scheduler.GetStatus()[0];
        Assert.Equal(new DateTimeOffset(2026, 11, 4, 1, 30, 0, TimeSpan.FromHours(-6)), status.NextRunLocal);
        Assert.Equal(TimeSpan.FromHours(-6), status.NextRunLocal!.Value.Offset);
    }

    [Fact]
    public async Task A_tick_during_a_run_is_skipped_and_counted_not_queued()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time) { Duration = i => i == 0 ? TimeSpan.FromSeconds(150) : TimeSpan.Zero };
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("m", Every(TimeSpan.FromMinutes(1))));
        await scheduler.StartAsync();

        time.Step(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(5)); // 10:01 starts a run of 2.5 minutes
        Assert.True(scheduler.GetStatus()[0].Running);
        time.Step(TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(5)); // 10:02 and 10:03 skipped; run ends 10:03:30; 10:04 runs

        Assert.Equal(2, refresher.Batches.Count);
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 4, 0, TimeSpan.Zero), refresher.Batches.Last().At);
        Assert.Equal(2, scheduler.GetStatus()[0].SkippedTicks);
        var metrics = await scheduler.StopAsync();
        Assert.Equal(2, metrics.SkippedTicks);
        Assert.Equal(2, metrics.TotalRuns);
        Assert.Equal(2, metrics.Succeeded);
        Assert.Equal(TimeSpan.FromSeconds(75), metrics.AverageDuration);
        Assert.Equal(TimeSpan.FromMinutes(4), metrics.Uptime);
    }

    [Fact]
    public async Task Starting_twice_starts_nothing_new()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("m", Every(TimeSpan.FromMinutes(1))));
        await scheduler.StartAsync();
        await scheduler.StartAsync();
        Assert.True(scheduler.IsStarted);

        time.Step(TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(10));
        Assert.Equal(2, refresher.Batches.Count);
        var status = scheduler.GetStatus()[0];
        Assert.Equal(0, status.SkippedTicks + status.ClaimedElsewhereCount); // one timer: no second firing of the same tick
    }

    [Fact]
    public async Task Stop_waits_for_a_run_in_progress_and_returns_final_metrics()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time) { Duration = _ => TimeSpan.FromSeconds(20) };
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.StopTimeout = TimeSpan.FromMinutes(1);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("m", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromSeconds(65), TimeSpan.FromSeconds(5));

        var stop = scheduler.StopAsync();
        Assert.False(stop.IsCompleted);
        time.Step(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(5));
        var metrics = await stop.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.False(scheduler.IsStarted);
        Assert.Equal(1, metrics.Succeeded);
        Assert.Equal(0, metrics.Failed);
        Assert.Equal(TimeSpan.FromSeconds(20), metrics.AverageDuration);
        Assert.Same(metrics, await scheduler.StopAsync());
    }

    [Fact]
    public async Task Stop_cancels_a_run_that_outlasts_the_stop_timeout()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time) { Duration = _ => TimeSpan.FromHours(1) };
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.StopTimeout = TimeSpan.FromSeconds(30);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("m", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromSeconds(65), TimeSpan.FromSeconds(5));

        var stop = scheduler.StopAsync();
        time.Step(TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(5));
        Assert.False(stop.IsCompleted);
        time.Step(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5));
        var metrics = await stop.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(1, metrics.Failed);
        Assert.Equal(RefreshScheduleOutcome.Cancelled, scheduler.GetStatus()[0].LastRun!.Outcome);
    }

    [Fact]
    public async Task Force_runs_now_without_moving_the_next_tick()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 20, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("m", Every(TimeSpan.FromMinutes(1))), ("other", Every(TimeSpan.FromHours(1))));
        await scheduler.StartAsync();
        var before = scheduler.GetStatus().Select(s => s.NextRunUtc).ToList();

        var runs = await scheduler.ForceAsync("M");

        var run = Assert.Single(runs);
        Assert.Equal(RefreshScheduleOutcome.Succeeded, run.Outcome);
        Assert.Null(run.Tick);
        Assert.Single(refresher.Batches);
        Assert.Equal(before, scheduler.GetStatus().Select(s => s.NextRunUtc));
        time.Step(TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(10));
        Assert.Equal(2, refresher.Batches.Count);
        Assert.Equal(2, (await scheduler.ForceAsync()).Count);
        await Assert.ThrowsAsync<ArgumentException>(() => scheduler.ForceAsync("nope"));
    }

    [Fact]
    public async Task Active_hours_limit_ticks_to_local_hours_of_the_zone()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.FromHours(-6)));
        var refresher = new ScheduledRefresher(time);
        var schedule = Every(TimeSpan.FromMinutes(30));
        schedule.TimeZone = "America/Chicago";
        schedule.ActiveHours = "06:00-22:00";
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("day", schedule));
        await scheduler.StartAsync();
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 6, 0, 0, TimeSpan.FromHours(-6)), scheduler.GetStatus()[0].NextRunLocal);

        time.Step(TimeSpan.FromDays(1), TimeSpan.FromMinutes(10));

        var hours = refresher.Batches.Select(b => TimeZoneInfo.ConvertTime(b.At, Chicago).TimeOfDay).ToList();
        Assert.Equal(32, hours.Count);
        Assert.Equal(TimeSpan.FromHours(6), hours.Min());
        Assert.Equal(TimeSpan.FromHours(21.5), hours.Max());
    }

    [Fact]
    public async Task Jitter_delays_the_run_but_not_the_tick_it_claims()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var store = new MemoryTickStore();
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.Jitter = TimeSpan.FromSeconds(20); // the randomizer is pinned at 0.5: +10 s
        using var scheduler = Schedulers.Create(time, refresher, store, ("m", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromSeconds(70), TimeSpan.FromSeconds(5));

        Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 1, 10, TimeSpan.Zero), Assert.Single(refresher.Batches).At);
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 10, 1, 0, TimeSpan.Zero), Assert.Single(store.Claims.Keys).Tick);
    }

    [Fact]
    public async Task Four_instances_on_one_store_run_each_tick_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var store = new MemoryTickStore();
        var refreshers = Enumerable.Range(0, 4).Select(_ => new ScheduledRefresher(time)).ToList();
        var schedulers = refreshers.Select(r => Schedulers.Create(time, r, store, ("m", Every(TimeSpan.FromSeconds(1))))).ToList();
        foreach (var s in schedulers)
        {
            await s.StartAsync();
        }

        time.Step(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(250));

        Assert.Equal(10, refreshers.Sum(r => r.Batches.Count));
        Assert.Equal(10, refreshers.SelectMany(r => r.Batches).Select(b => b.At).Distinct().Count());
        Assert.Equal(30, schedulers.Sum(s => s.GetStatus()[0].ClaimedElsewhereCount));
        schedulers.ForEach(s => s.Dispose());
    }

    [Fact]
    public async Task A_tick_claimed_by_another_instance_while_the_schedule_runs_elsewhere_is_skipped_and_counted()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var store = new MemoryTickStore();
        var slow = new ScheduledRefresher(time) { Duration = _ => TimeSpan.FromSeconds(90) };
        var other = new ScheduledRefresher(time);
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.MaxCatchUpRuns = 0;
        using var a = Schedulers.Create(time, slow, store, ("m", schedule));
        using var b = Schedulers.Create(time, other, store, ("m", schedule));
        await a.StartAsync();
        time.Step(TimeSpan.FromSeconds(31), TimeSpan.FromSeconds(1)); // a claims 10:01 and runs until 10:02:30
        Assert.Single(slow.Batches);
        Assert.True(store.Running.ContainsKey("m"));

        await b.StartAsync();
        time.Step(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)); // b claims 10:02 while a still runs

        Assert.Empty(other.Batches);
        var skipped = b.GetStatus()[0];
        Assert.Equal(1, skipped.SkippedTicks);
        Assert.Equal(0, skipped.SucceededCount + skipped.FailedCount);

        time.Step(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)); // a finishes at 10:02:30; the 10:03 tick runs
        Assert.Equal(1, a.GetStatus()[0].SucceededCount);
        Assert.Equal(2, slow.Batches.Count + other.Batches.Count);
        Assert.Contains(slow.Batches.Concat(other.Batches), x => x.At == new DateTimeOffset(2026, 1, 5, 10, 3, 0, TimeSpan.Zero));
    }

    [Fact]
    public async Task Missed_ticks_while_down_give_at_most_one_catch_up_run()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var store = new MemoryTickStore();
        store.Claims[("m", new DateTimeOffset(2026, 1, 5, 7, 0, 0, TimeSpan.Zero))] = 0; // last ran at 07:00; down since
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, store, ("m", Every(TimeSpan.FromMinutes(15))));
        await scheduler.StartAsync();

        Assert.Single(refresher.Batches);
        Assert.Contains(("m", new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero)), store.Claims.Keys);

        // A second instance starting now finds the missed tick caught up already.
        var other = new ScheduledRefresher(time);
        using var second = Schedulers.Create(time, other, store, ("m", Every(TimeSpan.FromMinutes(15))));
        await second.StartAsync();
        Assert.Empty(other.Batches);
    }

    [Fact]
    public async Task No_catch_up_when_configured_off_or_when_the_schedule_never_ran()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 30, TimeSpan.Zero));
        var store = new MemoryTickStore();
        var refresher = new ScheduledRefresher(time);
        using var fresh = Schedulers.Create(time, refresher, store, ("m", Every(TimeSpan.FromMinutes(15))));
        await fresh.StartAsync();
        Assert.Empty(refresher.Batches);

        store.Claims[("n", new DateTimeOffset(2026, 1, 5, 7, 0, 0, TimeSpan.Zero))] = 0;
        var off = Every(TimeSpan.FromMinutes(15));
        off.MaxCatchUpRuns = 0;
        using var scheduler = Schedulers.Create(time, refresher, store, ("n", off));
        await scheduler.StartAsync();
        Assert.Empty(refresher.Batches);
    }

    [Fact]
    public async Task Disabled_schedules_are_reported_but_never_run()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.Enabled = false;
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("off", schedule));
        await scheduler.StartAsync();
        time.Step(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1));

        Assert.Empty(refresher.Batches);
        var status = Assert.Single(scheduler.GetStatus());
        Assert.False(status.Enabled);
        Assert.Null(status.NextRunUtc);
    }

    [Fact]
    public async Task Status_reports_the_newest_data_instant_and_how_far_behind_it_is()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var store = new MemoryTickStore { NewestData = new DateTimeOffset(2026, 1, 3, 0, 0, 0, TimeSpan.Zero) };
        var schedule = Every(TimeSpan.FromMinutes(1));
        schedule.DataTimestampColumn = "sales.daily.day";
        using var scheduler = Schedulers.Create(time, new ScheduledRefresher(time), store, ("m", schedule));
        await scheduler.StartAsync();
        Assert.Null(scheduler.GetStatus()[0].DataAsOf);

        time.Step(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(10));

        var status = scheduler.GetStatus()[0];
        Assert.Equal(store.NewestData, status.DataAsOf);
        Assert.Equal(TimeSpan.FromDays(2) + TimeSpan.FromMinutes(601), status.DataBehind);
    }

    [Fact]
    public async Task A_tick_further_away_than_a_timer_can_wait_is_reached_by_re_arming()
    {
        // .NET timers wait at most ~49.7 days; a yearly cron's next tick is further away.
        var time = new RealTimerLimits(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        using var scheduler = Schedulers.Create(time, refresher, new MemoryTickStore(), ("yearly", new RefreshScheduleOptions { Cron = "0 3 1 1 *", Views = ["sales.daily"] }));

        await scheduler.StartAsync();
        time.Step(TimeSpan.FromDays(365), TimeSpan.FromDays(1));

        // Day-sized steps: the fake clock sets the time first and then fires what is due, so the run starts that day.
        var batch = Assert.Single(refresher.Batches);
        Assert.Equal(new DateOnly(2027, 1, 1), DateOnly.FromDateTime(batch.At.UtcDateTime));
    }

    /// <summary>A fake clock whose timers refuse what real ones refuse: a due time over 4,294,967,294 ms (about 49.7 days).</summary>
    private sealed class RealTimerLimits(DateTimeOffset start) : FakeTimeProvider(start)
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(dueTime.TotalMilliseconds, 4_294_967_294d, nameof(dueTime));
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }
}
