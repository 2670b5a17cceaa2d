using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

public sealed class SchedulerHostingTests
{
    [Fact]
    public async Task The_scheduler_starts_and_stops_with_the_host()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Services.AddSingleton<TimeProvider>(time)
            .AddSingleton<IMaterializedViewRefresher>(refresher)
            .AddSingleton<IScheduleTickStore>(new MemoryTickStore())
            .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
            .AddMatViewRefresh(o => o.Schedules["m"] = new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Views = ["a"] });
        using var host = builder.Build();
        await host.StartAsync();
        var scheduler = host.Services.GetRequiredService<IRefreshScheduler>();
        Assert.True(scheduler.IsStarted);

        time.Step(TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(10));
        Assert.Equal(2, refresher.Batches.Count);
        await host.StopAsync();
        Assert.False(scheduler.IsStarted);
    }

    [Fact]
    public async Task With_StartScheduler_off_the_host_leaves_it_stopped_until_started()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero));
        var refresher = new ScheduledRefresher(time);
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Services.AddSingleton<TimeProvider>(time)
            .AddSingleton<IMaterializedViewRefresher>(refresher)
            .AddSingleton<IScheduleTickStore>(new MemoryTickStore())
            .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
            .AddMatViewRefresh(o =>
            {
                o.StartScheduler = false;
                o.Schedules["m"] = new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Views = ["a"] };
            });
        using var host = builder.Build();
        await host.StartAsync();
        var scheduler = host.Services.GetRequiredService<IRefreshScheduler>();
        time.Step(TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(10));
        Assert.False(scheduler.IsStarted);
        Assert.Empty(refresher.Batches);

        await scheduler.StartAsync();
        time.Step(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(10));
        Assert.Single(refresher.Batches);
        await host.StopAsync();
    }

    [Fact]
    public async Task Instances_whose_clocks_differ_by_a_second_agree_on_the_tick()
    {
        var start = new DateTimeOffset(2026, 1, 5, 10, 0, 0, TimeSpan.Zero);
        var ahead = new FakeTimeProvider(start);
        var behind = new FakeTimeProvider(start - TimeSpan.FromSeconds(1));
        var store = new MemoryTickStore();
        var (r1, r2) = (new ScheduledRefresher(ahead), new ScheduledRefresher(behind));
        using var s1 = Schedulers.Create(ahead, r1, store, ("m", new RefreshScheduleOptions { Interval = TimeSpan.FromSeconds(10), Views = ["a"] }));
        using var s2 = Schedulers.Create(behind, r2, store, ("m", new RefreshScheduleOptions { Interval = TimeSpan.FromSeconds(10), Views = ["a"] }));
        await s1.StartAsync();
        await s2.StartAsync();

        for (var i = 0; i < 60 * 4; i++)
        {
            ahead.AdvanceWithoutContext(TimeSpan.FromMilliseconds(250));
            behind.AdvanceWithoutContext(TimeSpan.FromMilliseconds(250));
        }

        // Ticks 10:00:00 (only the late clock started before it) to 10:01:00: each claimed once, run once; the five both
        // instances saw (10:00:10-10:00:50) were lost by one of them.
        Assert.Equal(7, store.Claims.Count);
        Assert.Equal(7, r1.Batches.Count + r2.Batches.Count);
        Assert.Equal(5, s2.GetStatus()[0].ClaimedElsewhereCount + s1.GetStatus()[0].ClaimedElsewhereCount);
    }
}
