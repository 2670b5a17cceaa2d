using MatViewRefresh.Testing;

namespace MatViewRefresh.Tests;

public sealed class ManualTimeProviderTests
{
    [Fact]
    public void Advance_fires_due_timers_in_order_with_the_clock_at_each_due_time()
    {
        var clock = new ManualTimeProvider();
        var start = clock.GetUtcNow();
        var fired = new List<(string Name, TimeSpan At)>();
        using var late = clock.CreateTimer(_ => fired.Add(("late", clock.GetUtcNow() - start)), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
        using var early = clock.CreateTimer(_ => fired.Add(("early", clock.GetUtcNow() - start)), null, TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
        using var never = clock.CreateTimer(_ => fired.Add(("never", clock.GetUtcNow() - start)), null, TimeSpan.FromSeconds(60), Timeout.InfiniteTimeSpan);

        clock.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal([("early", TimeSpan.FromSeconds(2)), ("late", TimeSpan.FromSeconds(5))], fired);
        Assert.Equal(TimeSpan.FromSeconds(10), clock.GetUtcNow() - start);
    }

    [Fact]
    public void Periodic_timers_fire_once_per_period_and_changed_or_disposed_timers_follow_the_change()
    {
        var clock = new ManualTimeProvider();
        var ticks = 0;
        var changed = 0;
        using var periodic = clock.CreateTimer(_ => ticks++, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        var moved = clock.CreateTimer(_ => changed++, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        moved.Change(TimeSpan.FromSeconds(7), Timeout.InfiniteTimeSpan);

        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(5, ticks);
        Assert.Equal(0, changed);
        moved.Dispose();
        clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(10, ticks);
        Assert.Equal(0, changed);
    }

    [Fact]
    public void A_timer_armed_by_a_callback_fires_within_the_same_advance_when_due()
    {
        var clock = new ManualTimeProvider();
        var fired = new List<int>();
        ITimer? second = null;
        using var first = clock.CreateTimer(_ =>
        {
            fired.Add(1);
            second = clock.CreateTimer(_ => fired.Add(2), null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        }, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);

        clock.Advance(TimeSpan.FromSeconds(3));

        Assert.Equal([1, 2], fired);
        second!.Dispose();
    }

    [Fact]
    public async Task Task_Delay_on_the_manual_clock_completes_only_when_time_is_advanced()
    {
        var clock = new ManualTimeProvider();
        var delay = Task.Delay(TimeSpan.FromMinutes(1), clock);

        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.False(delay.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1));

        await delay;
    }
}
