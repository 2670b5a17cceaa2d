using MatViewRefresh.Testing;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.Tests;

/// <summary>The debounce state machine on a fake clock (stepped to each timer) with an inline task factory: deterministic, no sleeping.</summary>
public sealed class DebouncerTests
{
    private static readonly RefreshTarget Target = RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", 7), ("day_local", new DateOnly(2025, 11, 8)));

    private sealed class Harness
    {
        public Harness(Action<RefreshDebounceOptions>? configure = null, string? disable = null, double random = 0)
        {
            Clock = new SteppingClock(TestClock.Start);
            Start = Clock.GetUtcNow();
            Refresher = new FakeRefresher(Clock);
            var options = new MatViewRefreshOptions { Randomizer = () => random };
            configure?.Invoke(options.Debounce);
            Options = options.Debounce;
            Debouncer = TestDebouncer.Create(
                Refresher, Tasks, Clock, options, Logs.CreateLogger<RefreshDebouncer>(), name => name == RefreshDebounceOptions.DisableVariable ? disable : null);
        }

        public SteppingClock Clock { get; }

        public DateTimeOffset Start { get; }

        public FakeRefresher Refresher { get; }

        public InlineRefreshTaskFactory Tasks { get; } = new();

        public ListLogger Logs { get; } = new();

        public RefreshDebounceOptions Options { get; }

        public RefreshDebouncer Debouncer { get; }

        public TimeSpan Now => Clock.GetUtcNow() - Start;

        public RefreshTicket At(double seconds, string key = "k", RefreshTarget? target = null)
        {
            Clock.RunTo(Start + TimeSpan.FromSeconds(seconds));
            return Debouncer.Request(target ?? Target, key);
        }

        public void RunUntil(double seconds) => Clock.RunTo(Start + TimeSpan.FromSeconds(seconds));

        public IEnumerable<double> RunStarts => Refresher.Runs.Select(r => (r.Start - Start).TotalSeconds);
    }

    [Fact]
    public void A_burst_gives_one_run_a_settle_delay_after_the_last_request()
    {
        var h = new Harness();
        var tickets = new[] { h.At(0), h.At(0.2), h.At(0.4), h.At(0.6) };

        h.RunUntil(60);

        Assert.Equal([2.1], h.RunStarts);
        Assert.Equal([false, true, true, true], tickets.Select(t => t.Joined));
        Assert.Single(tickets.Select(t => t.Completion).Distinct());
        Assert.True(Done(tickets[0]).Success);
        Assert.Equal(h.Start + TimeSpan.FromSeconds(2.1), tickets[3].ScheduledFor);
    }

    [Fact]
    public void The_settle_delay_is_drawn_between_DelayMin_and_DelayMax()
    {
        var h = new Harness(random: 1.0);

        var ticket = h.At(0);
        h.RunUntil(60);

        Assert.Equal(h.Start + TimeSpan.FromSeconds(2), ticket.ScheduledFor);
        Assert.Equal([2.0], h.RunStarts);
    }

    [Fact]
    public void A_continuous_stream_still_gets_runs_no_later_than_MaxWait_after_the_first_request()
    {
        var h = new Harness();
        for (var t = 0; t <= 90; t++)
        {
            h.At(t);
        }

        h.RunUntil(200);

        var starts = h.RunStarts.ToList();
        Assert.Equal(30, starts[0]);
        Assert.All(starts.Zip(starts.Skip(1)), pair => Assert.InRange(pair.Second - pair.First, 20, 31));
        Assert.True(starts[^1] > 90, "the last requests got a run too");
    }

    [Fact]
    public void Requests_during_a_run_cause_exactly_one_more_run_after_it()
    {
        var h = new Harness();
        h.Refresher.Duration = i => i == 0 ? TimeSpan.FromSeconds(10) : TimeSpan.Zero;
        var first = h.At(0);
        var during = new[] { h.At(3), h.At(4), h.At(5), h.At(11) };

        h.RunUntil(12);
        Assert.True(first.Completion.IsCompletedSuccessfully);
        Assert.All(during, t => Assert.False(t.Completion.IsCompleted, "a request that arrived during the run is not covered by it"));
        h.RunUntil(120);

        Assert.Equal([1.5, 21.5], h.RunStarts);
        Assert.All(during, t => Assert.True(Done(t).Success));
        Assert.Equal([false, true, true, true], during.Select(t => t.Joined));
    }

    [Fact]
    public void Successive_runs_of_a_key_start_at_least_MinInterval_apart()
    {
        var h = new Harness();
        h.At(0);
        h.At(5);
        h.At(50);

        h.RunUntil(200);

        Assert.Equal([1.5, 21.5, 51.5], h.RunStarts);
    }

    [Fact]
    public void Keys_do_not_delay_each_other()
    {
        var h = new Harness();
        h.At(0, key: "a");
        h.At(0.5, key: "b");
        h.At(1, key: "a");

        h.RunUntil(10);

        Assert.Equal([2.0, 2.5], h.RunStarts.Order());
    }

    [Fact]
    public void A_failed_run_never_reaches_the_caller_and_is_retried_until_it_succeeds()
    {
        var h = new Harness(o => o.FailureRetryDelay = TimeSpan.FromSeconds(30));
        h.Refresher.Outcome = i => i < 2 ? RefreshOutcome.Failed : RefreshOutcome.Succeeded;

        var ticket = h.At(0);
        h.RunUntil(1000);

        Assert.Equal([1.5, 31.5, 91.5], h.RunStarts); // 30 s, then 60 s backoff
        Assert.True(Done(ticket).Success);
        Assert.Equal(2, h.Logs.Count(MatViewRefreshEventIds.DebounceRunFailed));
        Assert.Contains("scope day_local=2025-11-08&user_id=7", h.Logs.Messages(MatViewRefreshEventIds.DebounceRunFailed)[0]);
    }

    [Fact]
    public void After_the_retry_limit_the_ticket_completes_as_failed_and_the_key_is_forgotten()
    {
        var h = new Harness(o => o.MaxFailureRetries = 2);
        h.Refresher.Outcome = _ => RefreshOutcome.Failed;

        var ticket = h.At(0);
        h.RunUntil(3600);

        Assert.Equal(3, h.Refresher.Runs.Count);
        Assert.Equal(RefreshOutcome.Failed, Done(ticket).Outcome);
        Assert.Equal(1, h.Logs.Count(MatViewRefreshEventIds.DebounceRunGaveUp));
        Assert.Equal(0, h.Debouncer.KeyCount);
    }

    [Fact]
    public void A_refresher_exception_becomes_a_failed_result_and_a_missing_target_is_not_retried()
    {
        var h = new Harness();
        var missing = new FailingRefresher(new RefreshFunctionNotFoundException(Target.Name, ["user_id"], []));
        var debouncer = TestDebouncer.Create(missing, h.Tasks, h.Clock, new MatViewRefreshOptions(), h.Logs.CreateLogger<RefreshDebouncer>());

        var ticket = debouncer.Request(Target, "k");
        h.Clock.Advance(TimeSpan.FromHours(1));

        Assert.Equal(RefreshOutcome.Failed, Done(ticket).Outcome);
        Assert.Contains("does not exist", Done(ticket).Error!.Message);
        Assert.Equal(1, missing.Calls);
    }

    [Fact]
    public void A_run_that_finds_the_target_busy_elsewhere_is_coalesced_and_runs_again_after_it()
    {
        var h = new Harness();
        h.Refresher.Outcome = i => i == 0 ? RefreshOutcome.Coalesced : RefreshOutcome.Succeeded;

        var ticket = h.At(0);
        h.RunUntil(100);

        Assert.Equal([1.5, 21.5], h.RunStarts);
        Assert.True(Done(ticket).Success);
        Assert.All(h.Refresher.Runs, r => Assert.True(r.SkipIfBusy));
        Assert.Equal(0, h.Logs.Count(MatViewRefreshEventIds.DebounceRunFailed));
        Assert.Equal(1, h.Logs.Count(MatViewRefreshEventIds.DebounceCoalesced));
    }

    [Theory]
    [InlineData("1")]
    [InlineData("true")]
    [InlineData("YES")]
    [InlineData(" On ")]
    public void The_kill_switch_skips_requests_and_says_so(string value)
    {
        var h = new Harness(disable: value);

        var ticket = h.At(0);
        h.RunUntil(60);

        Assert.True(ticket.Skipped);
        Assert.Empty(h.Refresher.Runs);
        Assert.Equal(RefreshOutcome.Skipped, Done(ticket).Outcome);
        Assert.Equal(1, h.Logs.Count(MatViewRefreshEventIds.DebounceSkipped));
        Assert.Equal(1, h.Logs.Count(MatViewRefreshEventIds.DebounceDisabled));
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("no", false)]
    [InlineData("off", false)]
    [InlineData("enabled", false)]
    [InlineData("1", true)]
    [InlineData("TRUE", true)]
    [InlineData("Yes", true)]
    [InlineData("on", true)]
    public void Kill_switch_values(string? value, bool disabled) => Assert.Equal(disabled, KillSwitch.IsTruthy(value));

    [Fact]
    public void The_Enabled_option_turns_requests_off_too()
    {
        var h = new Harness(o => o.Enabled = false);

        Assert.True(h.At(0).Skipped);
        h.RunUntil(60);
        Assert.Empty(h.Refresher.Runs);
    }

    [Fact]
    public void Memory_stays_bounded_after_10k_distinct_keys()
    {
        var h = new Harness();
        for (var i = 0; i < 10_000; i++)
        {
            h.Debouncer.Request(Target, "user-" + i);
        }

        Assert.Equal(10_000, h.Debouncer.KeyCount);
        h.RunUntil(5);
        Assert.Equal(10_000, h.Refresher.Runs.Count);
        h.RunUntil(60);

        Assert.Equal(0, h.Debouncer.KeyCount);
    }

    [Fact]
    public async Task Stopping_runs_pending_refreshes_now_and_refuses_new_requests()
    {
        var h = new Harness();
        var ticket = h.At(0);

        await h.Debouncer.FlushAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([0.0], h.RunStarts);
        Assert.True(Done(ticket).Success);
        Assert.True(h.At(1).Skipped);
    }

    [Fact]
    public async Task Refreshes_not_done_within_the_shutdown_timeout_are_reported()
    {
        var h = new Harness(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        h.Refresher.Duration = _ => TimeSpan.FromMinutes(5);
        h.At(0);

        var flush = h.Debouncer.FlushAsync(CancellationToken.None);
        h.Clock.Advance(TimeSpan.FromSeconds(6));
        await flush.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, h.Logs.Count(MatViewRefreshEventIds.DebounceFlushIncomplete));
        Assert.Contains("k", h.Logs.Messages(MatViewRefreshEventIds.DebounceFlushIncomplete)[0]);
    }

    [Fact]
    public void Disposing_completes_tickets_that_will_never_run_as_skipped()
    {
        var h = new Harness();
        var ticket = h.At(0);

        h.Debouncer.Dispose();

        Assert.Equal(RefreshOutcome.Skipped, Done(ticket).Outcome);
        Assert.Contains("host stopped", Done(ticket).Error!.Message);
        Assert.Empty(h.Refresher.Runs);
    }

    [Fact]
    public void The_default_key_is_the_target_with_its_scope()
    {
        var h = new Harness();

        var ticket = h.Debouncer.Request(Target);

        Assert.Equal("marts.refresh_daily_features_user(day_local=2025-11-08&user_id=7)", ticket.Key);
    }

    [Theory]
    [InlineData("2025-03-09T07:30:00Z", "America/Chicago", "2025-03-09")] // 01:30 CST, just before the spring-forward gap
    [InlineData("2025-03-09T08:30:00Z", "America/Chicago", "2025-03-09")] // 03:30 CDT, just after it
    [InlineData("2025-11-02T04:59:00Z", "America/Chicago", "2025-11-01")] // 23:59 CDT
    [InlineData("2025-11-02T06:30:00Z", "America/Chicago", "2025-11-02")] // 01:30 CDT, repeated hour
    [InlineData("2025-11-08T23:30:00Z", "Europe/Paris", "2025-11-09")]
    [InlineData("2025-11-08T10:00:00Z", "Pacific/Auckland", "2025-11-08")]
    public void LocalDay_follows_the_zone_rules(string instant, string zone, string day)
    {
        var h = new Harness();

        Assert.Equal(DateOnly.Parse(day, System.Globalization.CultureInfo.InvariantCulture), h.Debouncer.LocalDay(DateTimeOffset.Parse(instant, System.Globalization.CultureInfo.InvariantCulture), zone));
    }

    [Fact]
    public void LocalDay_defaults_to_the_configured_zone_and_names_a_bad_one()
    {
        var h = new Harness(o => o.DefaultTimeZone = "Asia/Tokyo");

        Assert.Equal(new DateOnly(2025, 11, 9), h.Debouncer.LocalDay(new DateTimeOffset(2025, 11, 8, 20, 0, 0, TimeSpan.Zero)));
        var e = Assert.Throws<ArgumentException>(() => h.Debouncer.LocalDay(DateTimeOffset.UnixEpoch, "Mars/Olympus_Mons"));
        Assert.Contains("'Mars/Olympus_Mons'", e.Message);
        Assert.Equal(new DateOnly(2025, 11, 8), new Harness().Debouncer.LocalDay(new DateTimeOffset(2025, 11, 9, 3, 0, 0, TimeSpan.Zero)));
    }

    /// <summary>The result of a ticket that must already be complete: the fake clock ran its run inline.</summary>
    private static RefreshResult Done(RefreshTicket ticket)
    {
        Assert.True(ticket.Completion.IsCompleted, $"the ticket for {ticket.Key} is not complete");
        return ticket.Completion.GetAwaiter().GetResult();
    }

    private sealed class FailingRefresher(Exception exception) : IMaterializedViewRefresher
    {
        public int Calls { get; private set; }

        public Task<RefreshResult> RefreshAsync(RefreshTarget target, RefreshOptions? options = null, CancellationToken cancellationToken = default)
        {
            Calls++;
            return Task.FromException<RefreshResult>(exception);
        }

        public Task<RefreshBatchResult> RefreshManyAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<RefreshPlan> PlanAsync(RefreshSelection selection, RefreshOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}

/// <summary>A logger that keeps what it is told, by event id.</summary>
internal sealed class ListLogger : ILoggerProvider, ILogger
{
    private readonly List<(int Id, string Message)> _events = [];

    public ILogger<T> CreateLogger<T>() => new Logger<T>(new SingleProviderFactory(this));

    public int Count(int eventId)
    {
        lock (_events)
        {
            return _events.Count(e => e.Id == eventId);
        }
    }

    public IReadOnlyList<string> Messages(int eventId)
    {
        lock (_events)
        {
            return [.. _events.Where(e => e.Id == eventId).Select(e => e.Message)];
        }
    }

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    /// <summary>An event id whose logging throws (after it is recorded), as a broken log provider would.</summary>
    public int? ThrowOn { get; set; }

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_events)
        {
            _events.Add((eventId.Id, formatter(state, exception)));
        }

        if (eventId.Id == ThrowOn)
        {
            throw new InvalidOperationException($"simulated logging failure on event {eventId.Id}");
        }
    }

    public void Dispose()
    {
    }

    private sealed class SingleProviderFactory(ILoggerProvider provider) : ILoggerFactory
    {
        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => provider.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
