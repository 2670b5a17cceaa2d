using System.Collections.Concurrent;
using System.Diagnostics;
using MatViewRefresh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

/// <summary>The debouncer's edges: disposal races, caller context, concurrency bound, bookkeeping failures, clocks, threads.</summary>
public sealed class DebouncerEdgeTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly AsyncLocal<string?> CallerLocal = new();

    private static RefreshTarget Target(string key) => RefreshTarget.View("public.mv_" + key);

    [Fact]
    public void A_request_racing_Dispose_schedules_nothing_and_is_skipped()
    {
        var clock = new FakeTimeProvider(TestClock.Start);
        var refresher = new FakeRefresher(clock);
        RefreshDebouncer? debouncer = null;
        var disposeNow = false;

        // The settle delay is drawn after Request has checked that the debouncer is open: disposing there is the race.
        var options = new MatViewRefreshOptions
        {
            Randomizer = () =>
            {
                if (disposeNow)
                {
                    disposeNow = false;
                    debouncer!.Dispose();
                }

                return 0;
            },
        };
        debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, options, NullLogger<RefreshDebouncer>.Instance);

        disposeNow = true;
        var ticket = debouncer.Request(Target("a"), "a");
        clock.AdvanceWithoutContext(TimeSpan.FromHours(1));

        Assert.True(ticket.Skipped);
        Assert.True(ticket.Completion.IsCompleted);
        Assert.Equal(RefreshOutcome.Skipped, Done(ticket).Outcome);
        Assert.Empty(refresher.Runs);
        Assert.Equal(0, debouncer.KeyCount);
    }

    [Fact]
    public void A_request_after_Dispose_is_skipped()
    {
        var clock = new FakeTimeProvider(TestClock.Start);
        var refresher = new FakeRefresher(clock);
        var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, new MatViewRefreshOptions(), NullLogger<RefreshDebouncer>.Instance);

        debouncer.Dispose();
        var ticket = debouncer.Request(Target("a"), "a");
        clock.AdvanceWithoutContext(TimeSpan.FromHours(1));

        Assert.True(ticket.Skipped);
        Assert.Equal(RefreshOutcome.Skipped, Done(ticket).Outcome);
        Assert.Empty(refresher.Runs);
        Assert.Equal(0, debouncer.KeyCount);
    }

    [Fact]
    public async Task A_run_sees_none_of_the_callers_async_locals_or_activity()
    {
        var seen = new ConcurrentQueue<(string Path, string? Local, Activity? Activity)>();
        var refresher = new DelegateRefresher((target, _) =>
        {
            seen.Enqueue((target.Name.Name, CallerLocal.Value, Activity.Current));
            return Task.FromResult(DelegateRefresher.Succeeded(target));
        });
        var options = new MatViewRefreshOptions();
        options.Debounce.DelayMin = TimeSpan.FromMilliseconds(5);
        options.Debounce.DelayMax = TimeSpan.FromMilliseconds(5);
        options.Debounce.MinInterval = TimeSpan.Zero;
        options.Debounce.MaxWait = TimeSpan.FromSeconds(1);
        options.Debounce.ShutdownTimeout = Patience;
        using var tasks = new BackgroundRefreshTaskFactory();
        using var debouncer = TestDebouncer.Create(refresher, tasks, TimeProvider.System, options, NullLogger<RefreshDebouncer>.Instance);
        using var activity = new Activity("ingest").Start();
        CallerLocal.Value = "the caller's";

        // A timer armed by the first request of a key.
        var timed = debouncer.Request(Target("timed"), "timed");
        await timed.Completion.WaitAsync(Patience);

        // A run launched by the shutdown flush, from the caller's own flow.
        options.Debounce.DelayMin = options.Debounce.DelayMax = TimeSpan.FromHours(1);
        options.Debounce.MaxWait = TimeSpan.FromHours(2);
        using var slow = TestDebouncer.Create(refresher, tasks, TimeProvider.System, options, NullLogger<RefreshDebouncer>.Instance);
        var flushed = slow.Request(Target("flushed"), "flushed");
        await slow.FlushAsync(CancellationToken.None).WaitAsync(Patience);
        await flushed.Completion.WaitAsync(Patience);

        Assert.Equal(["mv_timed", "mv_flushed"], seen.Select(s => s.Path));
        Assert.All(seen, s => Assert.Null(s.Local));
        Assert.All(seen, s => Assert.Null(s.Activity));
        Assert.Equal("the caller's", CallerLocal.Value);
    }

    [Fact]
    public async Task No_more_than_MaxConcurrentRuns_run_at_once_and_the_rest_wait_their_turn()
    {
        var clock = new FakeTimeProvider(TestClock.Start);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var refresher = new GatedRefresher(gate.Task);
        var options = new MatViewRefreshOptions { Randomizer = () => 0 };
        options.Debounce.MaxConcurrentRuns = 3;
        using var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, options, NullLogger<RefreshDebouncer>.Instance);
        var tickets = Enumerable.Range(0, 50).Select(i => debouncer.Request(Target("k" + i), "k" + i)).ToList();

        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(2));
        Assert.Equal(3, refresher.Calls);

        // A run waiting for its turn is still this key's run: a new request does not join it, it waits for the next one.
        var waiting = Enumerable.Range(0, 50).Select(i => "k" + i).First(k => !refresher.Started.Contains("mv_" + k));
        var late = debouncer.Request(Target(waiting), waiting);
        Assert.False(late.Joined);

        gate.SetResult();
        await Task.WhenAll(tickets.Select(t => t.Completion)).WaitAsync(Patience);

        Assert.Equal(3, refresher.MaxConcurrent);
        Assert.Equal(50, refresher.Calls);
        Assert.All(tickets, t => Assert.True(Done(t).Success));
        Assert.False(late.Completion.IsCompleted, "the late request waits for a run that starts after it");
    }

    [Fact]
    public async Task The_shutdown_flush_respects_MaxConcurrentRuns()
    {
        var clock = new FakeTimeProvider(TestClock.Start);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var refresher = new GatedRefresher(gate.Task);
        var options = new MatViewRefreshOptions();
        options.Debounce.MaxConcurrentRuns = 4;
        using var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, options, NullLogger<RefreshDebouncer>.Instance);
        var tickets = Enumerable.Range(0, 50).Select(i => debouncer.Request(Target("k" + i), "k" + i)).ToList();

        var flush = debouncer.FlushAsync(CancellationToken.None);
        Assert.Equal(4, refresher.Calls);
        gate.SetResult();
        await flush.WaitAsync(Patience);

        Assert.Equal(4, refresher.MaxConcurrent);
        Assert.Equal(50, refresher.Calls);
        Assert.All(tickets, t => Assert.True(t.Completion.IsCompletedSuccessfully));
    }

    [Fact]
    public void MaxConcurrentRuns_defaults_below_the_connection_pool_and_must_be_at_least_one()
    {
        Assert.InRange(new RefreshDebounceOptions().MaxConcurrentRuns, 1, 99);
        var options = new MatViewRefreshOptions();
        options.Debounce.MaxConcurrentRuns = 0;

        var result = new MatViewRefreshOptionsDataValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f == "MatViewRefresh:Debounce:MaxConcurrentRuns is 0; it must be between 1 and 1000.");
    }

    [Fact]
    public void A_bookkeeping_failure_after_a_run_still_completes_its_tickets_and_frees_the_key()
    {
        var clock = new FakeTimeProvider(TestClock.Start);
        var refresher = new FakeRefresher(clock) { Outcome = i => i == 0 ? RefreshOutcome.Failed : RefreshOutcome.Succeeded };
        var logs = new ListLogger { ThrowOn = MatViewRefreshEventIds.DebounceRunGaveUp };
        var options = new MatViewRefreshOptions { Randomizer = () => 0 };
        options.Debounce.MaxFailureRetries = 0;
        options.Debounce.MinInterval = TimeSpan.Zero;
        using var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, options, logs.CreateLogger<RefreshDebouncer>());

        var first = debouncer.Request(Target("a"), "a");
        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(2));

        Assert.True(first.Completion.IsCompleted, "the ticket completes although the bookkeeping after its run threw");
        Assert.Equal(RefreshOutcome.Failed, Done(first).Outcome);
        Assert.Equal(1, logs.Count(MatViewRefreshEventIds.DebounceBookkeepingFailed));
        Assert.Contains("simulated logging failure", logs.Messages(MatViewRefreshEventIds.DebounceBookkeepingFailed)[0]);

        // The key is not stuck "running": the next request gets a run of its own.
        var second = debouncer.Request(Target("a"), "a");
        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(2));

        Assert.False(second.Joined);
        Assert.True(second.Completion.IsCompletedSuccessfully);
        Assert.True(Done(second).Success);
        Assert.Equal(2, refresher.Runs.Count);
    }

    [Fact]
    public void A_wall_clock_jump_back_does_not_postpone_a_pending_run()
    {
        var fake = new SteppingClock(TestClock.Start);
        var clock = new WallJumpingClock(fake);
        var refresher = new FakeRefresher(fake);
        using var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, new MatViewRefreshOptions { Randomizer = () => 0 }, NullLogger<RefreshDebouncer>.Instance);

        var ticket = debouncer.Request(Target("a"), "a");
        clock.Jump = TimeSpan.FromHours(-1); // NTP steps the wall clock back
        fake.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal([TimeSpan.FromSeconds(1.5)], refresher.Runs.Select(r => r.Start - TestClock.Start));
        Assert.True(ticket.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_wall_clock_jump_forward_does_not_bring_a_pending_run_forward_or_push_it_to_MaxWait()
    {
        var fake = new SteppingClock(TestClock.Start);
        var clock = new WallJumpingClock(fake);
        var refresher = new FakeRefresher(fake);
        using var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, new MatViewRefreshOptions { Randomizer = () => 0 }, NullLogger<RefreshDebouncer>.Instance);

        debouncer.Request(Target("a"), "a");
        fake.Advance(TimeSpan.FromSeconds(1));
        clock.Jump = TimeSpan.FromHours(1);
        var joined = debouncer.Request(Target("a"), "a"); // pushes the run to 1 s + 1.5 s on the monotonic clock
        fake.Advance(TimeSpan.FromSeconds(60));

        Assert.True(joined.Joined);
        Assert.Equal(TestClock.Start + TimeSpan.FromHours(1) + TimeSpan.FromSeconds(2.5), joined.ScheduledFor);
        Assert.Equal([TimeSpan.FromSeconds(2.5)], refresher.Runs.Select(r => r.Start - TestClock.Start));
    }

    [Fact]
    public async Task On_the_real_clock_with_many_threads_every_request_is_followed_by_a_run_that_started_after_it()
    {
        const int Keys = 3;
        var versions = new long[Keys];
        var snapshots = new ConcurrentDictionary<RefreshResult, long>(ReferenceEqualityComparer.Instance);
        var refresher = new DelegateRefresher(async (target, cancellationToken) =>
        {
            // The run's snapshot: the data version committed when it started.
            var snapshot = Volatile.Read(ref versions[int.Parse(target.Name.Name[^1..], System.Globalization.CultureInfo.InvariantCulture)]);
            if (Random.Shared.Next(3) == 0)
            {
                await Task.Delay(Random.Shared.Next(1, 4), cancellationToken).ConfigureAwait(false); // a run that takes a moment
            }

            var result = DelegateRefresher.Succeeded(target);
            snapshots[result] = snapshot;
            return result;
        });
        var options = new MatViewRefreshOptions();
        options.Debounce.DelayMin = TimeSpan.FromMilliseconds(5);
        options.Debounce.DelayMax = TimeSpan.FromMilliseconds(20);
        options.Debounce.MinInterval = TimeSpan.FromMilliseconds(10);
        options.Debounce.MaxWait = TimeSpan.FromMilliseconds(50);
        options.Debounce.MaxConcurrentRuns = 2;
        using var tasks = new BackgroundRefreshTaskFactory();
        using var debouncer = TestDebouncer.Create(refresher, tasks, TimeProvider.System, options, NullLogger<RefreshDebouncer>.Instance);

        var requests = new ConcurrentBag<(int Key, long Version, RefreshTicket Ticket)>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            var random = new Random(t);
            var watch = Stopwatch.StartNew();
            while (watch.ElapsedMilliseconds < 400)
            {
                var key = random.Next(Keys);
                var version = Interlocked.Increment(ref versions[key]); // the caller's commit
                requests.Add((key, version, debouncer.Request(Target("key" + key), "key" + key)));
                Thread.SpinWait(random.Next(1, 20_000));
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        await Task.WhenAll(requests.Select(r => r.Ticket.Completion)).WaitAsync(Patience);

        Assert.True(requests.Count > 100, $"only {requests.Count} requests");
        var uncovered = requests.Where(r => snapshots[Done(r.Ticket)] < r.Version).ToList();
        Assert.True(uncovered.Count == 0, $"{uncovered.Count} of {requests.Count} requests completed by a run that started before them, e.g. key {uncovered.FirstOrDefault().Key} version {uncovered.FirstOrDefault().Version}");
        for (var key = 0; key < Keys; key++)
        {
            Assert.Contains(snapshots.Values, s => s == versions[key]); // the last commit of every key was refreshed
        }
    }

    /// <summary>The result of a ticket that must already be complete.</summary>
    private static RefreshResult Done(RefreshTicket ticket)
    {
        Assert.True(ticket.Completion.IsCompleted, $"the ticket for {ticket.Key} is not complete");
        return ticket.Completion.GetAwaiter().GetResult();
    }

    /// <summary>A wall clock that can be stepped (as NTP does) while timestamps and timers stay monotonic.</summary>
    private sealed class WallJumpingClock(TimeProvider inner) : TimeProvider
    {
        public TimeSpan Jump { get; set; }

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + Jump;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => inner.CreateTimer(callback, state, dueTime, period);
    }

    /// <summary>Counts calls in progress; each waits for the gate.</summary>
    private sealed class GatedRefresher(Task gate) : IMaterializedViewRefresher
    {
        private int _current;
        private int _max;
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public int MaxConcurrent => Volatile.Read(ref _max);

        public ConcurrentQueue<string> Started { get; } = new();

        public async Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            Started.Enqueue(target.Name.Name);
            var now = Interlocked.Increment(ref _current);
            int max;
            while (now > (max = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, max) != max)
            {
            }

            await gate.ConfigureAwait(false);
            Interlocked.Decrement(ref _current);
            return DelegateRefresher.Succeeded(target);
        }

        public Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}

/// <summary>A refresher that does what the test says.</summary>
internal sealed class DelegateRefresher(Func<RefreshTarget, CancellationToken, Task<RefreshResult>> refresh) : IMaterializedViewRefresher
{
    public static RefreshResult Succeeded(RefreshTarget target)
    {
        var now = DateTimeOffset.UtcNow;
        return new RefreshResult { Target = target, Outcome = RefreshOutcome.Succeeded, RequestedMode = RefreshMode.Auto, StartedAt = now, FinishedAt = now, Attempts = 1 };
    }

    public Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default) => refresh(target, cancellationToken);

    public Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
}
