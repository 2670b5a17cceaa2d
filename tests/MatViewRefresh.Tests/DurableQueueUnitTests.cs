using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

/// <summary>The durable queue's rules that need no database: day ranges a run covers, when a target is due, backoff, settings.</summary>
public sealed class DurableQueueUnitTests
{
    private static readonly DateOnly March1 = new(2025, 3, 1);

    private static DayRange Days(int first, int last) => new(March1.AddDays(first), March1.AddDays(last));

    [Fact]
    public void Overlapping_and_adjacent_day_ranges_merge_and_gaps_stay()
    {
        var merged = DayRanges.Merge([Days(10, 12), Days(0, 2), Days(3, 4), Days(11, 11), Days(6, 6), Days(1, 1)]);

        Assert.Equal([Days(0, 4), Days(6, 6), Days(10, 12)], merged);
    }

    [Fact]
    public void Merged_ranges_cover_exactly_the_days_of_their_inputs()
    {
        var random = new Random(7);
        for (var round = 0; round < 200; round++)
        {
            var ranges = Enumerable.Range(0, random.Next(0, 20)).Select(_ =>
            {
                var first = random.Next(0, 60);
                return Days(first, first + random.Next(0, 4));
            }).ToList();
            var merged = DayRanges.Merge(ranges);

            var expected = ranges.SelectMany(r => Enumerable.Range(r.First.DayNumber, r.Last.DayNumber - r.First.DayNumber + 1)).ToHashSet();
            var covered = merged.SelectMany(r => Enumerable.Range(r.First.DayNumber, r.Last.DayNumber - r.First.DayNumber + 1)).ToList();
            Assert.Equal(expected.Order(), covered); // every day once, in order: no overlap, nothing added
            Assert.All(merged.Zip(merged.Skip(1)), p => Assert.True(p.Second.First.DayNumber > p.First.Last.DayNumber + 1, "adjacent ranges left apart"));
        }
    }

    [Fact]
    public void A_run_is_full_when_any_covered_request_asks_for_full_and_as_configured_when_any_names_no_days()
    {
        Assert.Equal("2025-03-01..2025-03-03, 2025-03-10", ChangeCaptureRequests.From([Row(0, 1), Row(2, 2), Row(9, 9)]).ToString());
        var mixed = ChangeCaptureRequests.From([Row(0, 0), new RefreshRequestRow(null, null, false)]);
        Assert.True(mixed.AsConfigured);
        Assert.False(mixed.Full);
        Assert.Equal([Days(0, 0)], mixed.Days);
        Assert.Equal("as configured, 2025-03-01", mixed.ToString());
        var full = ChangeCaptureRequests.From([new RefreshRequestRow(null, null, false), new RefreshRequestRow(null, null, true)]);
        Assert.True(full.Full);
        Assert.Equal("full", full.ToString());
    }

    private static RefreshRequestRow Row(int first, int last) => new(March1.AddDays(first), March1.AddDays(last), false);

    [Fact]
    public void A_target_is_due_a_settle_delay_after_its_newest_request_but_no_later_than_MaxWait_after_its_oldest()
    {
        var time = new FakeTimeProvider();
        var options = new RefreshDebounceOptions { DelayMin = TimeSpan.FromSeconds(2), MaxWait = TimeSpan.FromSeconds(10), MinInterval = TimeSpan.FromSeconds(5) };
        var first = time.GetUtcNow();
        Assert.Equal(first + TimeSpan.FromSeconds(2), DurableTiming.Due(first, first, null, null, options));

        time.Advance(TimeSpan.FromSeconds(1.5)); // a second request pushes the run back
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(2), DurableTiming.Due(first, time.GetUtcNow(), null, null, options));

        time.Advance(TimeSpan.FromSeconds(8.5)); // a stream of requests still runs MaxWait after the first
        Assert.Equal(first + TimeSpan.FromSeconds(10), DurableTiming.Due(first, time.GetUtcNow(), null, null, options));
    }

    [Fact]
    public void A_target_is_never_due_before_MinInterval_after_its_last_run_nor_before_its_retry_time()
    {
        var time = new FakeTimeProvider();
        var options = new RefreshDebounceOptions { DelayMin = TimeSpan.FromSeconds(1), MaxWait = TimeSpan.FromSeconds(30), MinInterval = TimeSpan.FromSeconds(20) };
        var lastRun = time.GetUtcNow();
        time.Advance(TimeSpan.FromSeconds(3));
        var request = time.GetUtcNow();

        Assert.Equal(lastRun + TimeSpan.FromSeconds(20), DurableTiming.Due(request, request, lastRun, null, options));
        Assert.Equal(request + TimeSpan.FromMinutes(1), DurableTiming.Due(request, request, lastRun, request + TimeSpan.FromMinutes(1), options));
    }

    [Theory]
    [InlineData(0, 1000)] // none: a group still waits no longer than a second
    [InlineData(250, 250)]
    [InlineData(999, 999)]
    [InlineData(1000, 1000)]
    [InlineData(30_000, 1000)]
    public void A_target_in_a_group_waits_for_a_lock_at_most_a_second_or_its_own_shorter_timeout(int lockTimeoutMs, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), DurableRefreshWorker.GroupLockTimeout(TimeSpan.FromMilliseconds(lockTimeoutMs)));

    [Theory]
    [InlineData(50, 10_000, 5_000)] // a fast poll: a worker counts for 10 s after its last read; others' targets are taken 5 s overdue
    [InlineData(999, 10_000, 5_000)]
    [InlineData(1000, 10_000, 5_000)] // the default poll interval
    [InlineData(1001, 10_010, 5_005)]
    [InlineData(60_000, 600_000, 300_000)] // a slow poll: ten and five of them
    public void Shares_count_a_worker_for_ten_poll_intervals_and_take_others_targets_five_poll_intervals_overdue_never_less_than_10_and_5_s(
        int pollMs, int livenessMs, int stealMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(livenessMs), DurableRefreshWorker.ShareLiveness(TimeSpan.FromMilliseconds(pollMs)));
        Assert.Equal(TimeSpan.FromMilliseconds(stealMs), DurableRefreshWorker.StealAfter(TimeSpan.FromMilliseconds(pollMs)));
    }

    [Theory]
    [InlineData(0, 100, 1)] // nothing measured yet: due targets are spread over the free runs
    [InlineData(200, 100, 1)] // slow targets: spread, to refresh in parallel
    [InlineData(50, 100, 1)]
    [InlineData(24.9, 100, 2)]
    [InlineData(1, 100, 50)] // cheap targets: about 50 ms of them share a claim and a transaction
    [InlineData(0.1, 100, 100)] // never more than MaxTargetsPerRun
    [InlineData(0.1, 1, 1)]
    public void The_smallest_group_holds_about_50_ms_of_refreshes_by_their_recent_cost(double targetCostMs, int maxTargetsPerRun, int expected) =>
        Assert.Equal(expected, DurableRefreshWorker.MinGroupSize(targetCostMs, maxTargetsPerRun));

    [Theory]
    [InlineData(1000, 100)]
    [InlineData(200, 100)]
    [InlineData(150, 75)] // a fast poll: half of it
    [InlineData(10, 5)]
    public void Targets_seen_coming_wait_at_most_100_ms_or_half_the_poll_interval_for_others_to_join_their_group(int pollMs, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), DurableRefreshWorker.UpcomingBatch(TimeSpan.FromMilliseconds(pollMs)));

    [Fact]
    public void Backoff_doubles_from_FailureRetryDelay_and_stops_at_FailureRetryMaxDelay()
    {
        var options = new RefreshDebounceOptions { FailureRetryDelay = TimeSpan.FromSeconds(5), FailureRetryMaxDelay = TimeSpan.FromMinutes(5) };

        Assert.Equal(
            [0, 5, 10, 20, 40, 80, 160, 300, 300],
            Enumerable.Range(0, 9).Select(f => DurableTiming.Backoff(f, options).TotalSeconds));
        Assert.Equal(TimeSpan.FromMinutes(5), DurableTiming.Backoff(int.MaxValue, options));
    }

    [Fact]
    public void Durable_settings_bind_from_configuration_and_bad_ones_fail_at_start_naming_the_setting()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:ConnectionString"] = "Host=127.0.0.1;Port=1;Database=none",
            ["MatViewRefresh:Durable:Enabled"] = "true",
            ["MatViewRefresh:Durable:PollInterval"] = "00:00:00",
            ["MatViewRefresh:Durable:MaxConcurrentRuns"] = "0",
            ["MatViewRefresh:Durable:MaxTargetsPerRun"] = "0",
            ["MatViewRefresh:Durable:Trigger"] = " ",
        }).Build();
        using var host = new HostBuilder().ConfigureServices(s => s.AddMatViewRefresh(configuration.GetSection("MatViewRefresh"))).Build();

        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync().GetAwaiter().GetResult());
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Durable:PollInterval is 00:00:00", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Durable:MaxConcurrentRuns is 0", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Durable:MaxTargetsPerRun is 0", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Durable:Trigger is empty", StringComparison.Ordinal));
    }

    [Fact]
    public void The_queue_and_its_worker_are_registered_once_without_touching_a_database()
    {
        var collection = new ServiceCollection().AddMatViewRefresh(o => o.ConnectionString = "Host=127.0.0.1;Port=1;Database=none").AddMatViewRefresh();
        Assert.Single(collection, d => d.ServiceType == typeof(IRefreshQueue));
        Assert.Single(collection, d => d.ImplementationType == typeof(DurableRefreshWorker));
        using var services = collection.BuildServiceProvider();
        Assert.Same(services.GetRequiredService<IRefreshQueue>(), services.GetRequiredService<RefreshQueue>());
    }

    [Fact]
    public void Targets_resolve_from_registration_then_the_resolver_then_as_a_view()
    {
        using var services = new ServiceCollection().AddMatViewRefresh(o =>
        {
            o.ConnectionString = "Host=127.0.0.1;Port=1;Database=none";
            o.DefaultSchema = "sales";
            o.Durable.Resolver = text => text == "sales.f(k=1)" ? RefreshTarget.Function("f", ("k", 1)) : null;
        }).BuildServiceProvider();
        var queue = services.GetRequiredService<RefreshQueue>();
        var window = RefreshTarget.Window("daily", "day", "SELECT * FROM src WHERE day >= @from AND day < @to");
        var options = new RefreshOptions { Days = 7 };
        queue.Register(window, options);

        var registered = queue.Resolve("sales.daily")!;
        Assert.Equal(RefreshTargetKind.Window, registered.Target.Kind);
        Assert.Same(options, registered.Options);
        Assert.Equal(RefreshTarget.Function("sales.f", ("k", 1)), queue.Resolve("sales.f(k=1)")!.Target);
        Assert.Equal(RefreshTarget.View("sales", "mv_totals"), queue.Resolve("sales.mv_totals")!.Target);
        Assert.Null(queue.Resolve("sales.g(k=1)")); // a function nobody registered: not a view name either
    }
}
