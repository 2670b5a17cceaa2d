using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Tests;

/// <summary>What a host app's tests do with MatViewRefresh.Testing: no database, a fake clock, inline work.</summary>
public sealed class TestingPackageTests
{
    private static readonly RefreshTarget UserDay = RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", Guid.Empty), ("day_local", new DateOnly(2025, 11, 8)));

    [Fact]
    public void A_host_app_test_drives_debounced_refreshes_with_the_fake_clock_and_records_the_sql()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 12, 0, 0, TimeSpan.Zero));
        var recorder = new RecordingRefreshExecutor();
        using var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
            .AddMatViewRefresh()
            .AddRecordingRefreshExecutor(recorder)
            .BuildServiceProvider();
        var debouncer = services.GetRequiredService<IRefreshDebouncer>();

        var ticket = debouncer.Request(UserDay);
        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(1));
        Assert.Empty(recorder.Commands);
        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(1));

        Assert.True(ticket.Completion.IsCompletedSuccessfully);
        var command = Assert.Single(recorder.Refreshes);
        Assert.Equal("SELECT \"marts\".\"refresh_daily_features_user\"(\"user_id\" => $1, \"day_local\" => $2)", command.Statements[1].CommandText);
        Assert.Equal([Guid.Empty, new DateOnly(2025, 11, 8)], command.Statements[1].Parameters);
        Assert.Equal("debounce", command.Trigger);
        Assert.False(command.WaitForLock);
    }

    [Fact]
    public void A_retry_that_waits_on_the_fake_clock_finishes_inside_AdvanceWithoutContext()
    {
        // FakeTimeProvider.Advance would fire the retry's delay timer, but under the test framework's synchronization
        // context the retry itself would continue later on another thread; AdvanceWithoutContext runs it right there.
        var clock = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 12, 0, 0, TimeSpan.Zero));
        var recorder = new RecordingRefreshExecutor();
        var attempts = 0;
        recorder.Handler = (_, _) => Interlocked.Increment(ref attempts) == 1
            ? Task.FromException<RefreshExecution>(new Npgsql.NpgsqlException("connection lost", new IOException("reset")))
            : Task.FromResult(RefreshExecution.Empty);
        using var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
            .AddMatViewRefresh()
            .AddRecordingRefreshExecutor(recorder)
            .BuildServiceProvider();

        var ticket = services.GetRequiredService<IRefreshDebouncer>().Request(UserDay);
        clock.AdvanceWithoutContext(TimeSpan.FromSeconds(2));
        Assert.Single(recorder.Refreshes);
        Assert.False(ticket.Completion.IsCompleted, "the first attempt failed; the retry waits for its backoff");
        clock.AdvanceWithoutContext(TimeSpan.FromMinutes(1));

        Assert.True(ticket.Completion.IsCompletedSuccessfully, "the retry ran inside AdvanceWithoutContext");
        Assert.Equal(2, recorder.Refreshes.Count);
    }

    [Fact]
    public async Task Stopping_the_host_flushes_pending_debounced_refreshes()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 12, 0, 0, TimeSpan.Zero));
        var recorder = new RecordingRefreshExecutor();
        using var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s
                .AddSingleton<TimeProvider>(clock)
                .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
                .AddMatViewRefresh()
                .AddRecordingRefreshExecutor(recorder))
            .Build();
        await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var ticket = host.Services.GetRequiredService<IRefreshDebouncer>().Request(UserDay);

        await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Single(recorder.Refreshes);
        Assert.True(ticket.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void Bad_debounce_settings_are_named_at_start()
    {
        using var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s.AddMatViewRefresh(o =>
            {
                o.Debounce.DelayMin = TimeSpan.FromSeconds(3);
                o.Debounce.DelayMax = TimeSpan.FromSeconds(2);
                o.Debounce.MinInterval = TimeSpan.FromMinutes(5);
                o.Debounce.DefaultTimeZone = "Mars/Olympus_Mons";
            }))
            .Build();

        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync().GetAwaiter().GetResult());

        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Debounce:DelayMax", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Debounce:MinInterval", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("'Mars/Olympus_Mons'", StringComparison.Ordinal));
    }
}
