using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The shared test server has no pg_cron: the scheduler says how to install it.</summary>
public sealed class PgCronMissingTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Without_pg_cron_every_call_says_how_to_install_it()
    {
        var scheduler = db.CreateServices().GetRequiredService<IDatabaseRefreshScheduler>();

        var e = await Assert.ThrowsAsync<InvalidOperationException>(
            () => scheduler.ScheduleInDatabaseAsync("nightly", "0 3 * * *", RefreshSelection.Views("public.anything")));
        Assert.Contains("CREATE EXTENSION pg_cron", e.Message, StringComparison.Ordinal);
        Assert.Contains("shared_preload_libraries", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => scheduler.UnscheduleInDatabaseAsync("nightly"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => scheduler.GetDatabaseSchedulesAsync());
    }
}
