using System.Diagnostics;

namespace MatViewRefresh.Cli.Tests;

public sealed class CancelTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task Sigint_cancels_the_running_refresh_on_the_server_and_exits_130()
    {
        await db.ExecuteAsync("CREATE SCHEMA c1; CREATE MATERIALIZED VIEW c1.mv_slow AS SELECT pg_sleep(120)::text AS s WITH NO DATA;");
        using var refresh = db.Start("refresh", "--views", "c1.mv_slow");
        var backend = 0;
        await CliDatabaseFixture.EventuallyAsync(
            async () =>
            {
                backend = await db.ScalarAsync<int?>(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'matview-refresh' AND state = 'active' AND wait_event = 'PgSleep' LIMIT 1") ?? 0;
                return backend != 0;
            },
            "the refresh to run on the server");

        using (var kill = Process.Start("kill", ["-INT", refresh.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var run = await Cli.WaitAsync(refresh, TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 130, run.ToString());
        Assert.Contains("cancelled", run.Err);
        // The statement was cancelled, not left running after the client went away (pg_sleep(120) would hold it for 2 minutes).
        await CliDatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", backend) == 0,
            "the server backend to stop running the refresh",
            TimeSpan.FromSeconds(20));
        Assert.False(await db.ScalarAsync<bool>("SELECT relispopulated FROM pg_class WHERE oid = 'c1.mv_slow'::regclass"));
    }
}
