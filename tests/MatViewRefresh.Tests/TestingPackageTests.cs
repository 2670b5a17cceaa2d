using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MatViewRefresh.Tests;

/// <summary>What a host app's tests do with MatViewRefresh.Testing: no database, a manual clock, inline work.</summary>
public sealed class TestingPackageTests
{
    private static readonly RefreshTarget UserDay = RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", Guid.Empty), ("day_local", new DateOnly(2025, 11, 8)));

    [Fact]
    public void A_host_app_test_drives_debounced_refreshes_with_the_manual_clock_and_records_the_sql()
    {
        var clock = new ManualTimeProvider();
        var recorder = new RecordingRefreshExecutor();
        using var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
            .AddMatViewRefresh()
            .AddRecordingRefreshExecutor(recorder)
            .BuildServiceProvider();
        var debouncer = services.GetRequiredService<IRefreshDebouncer>();

        var ticket = debouncer.Request(UserDay);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(recorder.Commands);
        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.True(ticket.Completion.IsCompletedSuccessfully);
        var command = Assert.Single(recorder.Refreshes);
        Assert.Equal("SELECT \"marts\".\"refresh_daily_features_user\"(\"user_id\" => $1, \"day_local\" => $2)", command.Statements[1].CommandText);
        Assert.Equal([Guid.Empty, new DateOnly(2025, 11, 8)], command.Statements[1].Parameters);
        Assert.Equal("debounce", command.Trigger);
        Assert.False(command.WaitForLock);
    }

    [Fact]
    public async Task Stopping_the_host_flushes_pending_debounced_refreshes()
    {
        var clock = new ManualTimeProvider();
        var recorder = new RecordingRefreshExecutor();
        using var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s
                .AddSingleton<TimeProvider>(clock)
                .AddSingleton<IRefreshTaskFactory>(new InlineRefreshTaskFactory())
                .AddMatViewRefresh()
                .AddRecordingRefreshExecutor(recorder))
            .Build();
        await host.StartAsync();
        var ticket = host.Services.GetRequiredService<IRefreshDebouncer>().Request(UserDay);

        await host.StopAsync();

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
