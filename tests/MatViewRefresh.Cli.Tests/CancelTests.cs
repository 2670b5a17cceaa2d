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

        Signals.Interrupt(refresh.Id);

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

    [Fact]
    public async Task Ctrl_c_in_a_terminal_clears_the_live_progress_cancels_the_refresh_on_the_server_and_exits_130()
    {
        await db.ExecuteAsync("CREATE SCHEMA c2; CREATE MATERIALIZED VIEW c2.mv_slow AS SELECT pg_sleep(120)::text AS s WITH NO DATA;");
        // script(1) runs the tool on a pseudo-terminal: the interactive path, with the live progress table and its spinners.
        var command = $"exec dotnet '{Cli.ToolPath}' refresh --views c2.mv_slow --connection '{db.ConnectionString}'";
        using var terminal = Process.Start(Cli.StartInfo(["-qec", command, "/dev/null"], executable: "script"))!;
        var screen = new WatchedOutput(terminal);
        var backend = 0;
        await CliDatabaseFixture.EventuallyAsync(
            async () =>
            {
                backend = await db.ScalarAsync<int?>(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'matview-refresh' AND state = 'active' AND wait_event = 'PgSleep' LIMIT 1") ?? 0;
                return backend != 0;
            },
            "the refresh to run on the server");

        // Ctrl+C is pressed once the live table shows the running view, as a user would see it (the table is redrawn on
        // the spinner's beat, so it can lag the statement's start by a frame).
        await CliDatabaseFixture.EventuallyAsync(
            () => Task.FromResult(screen.Text.Contains('╭') && screen.Text.Contains("c2.mv_slow")),
            "the live table to show the running view");

        // The tool is script's child (exec): Ctrl+C is a SIGINT to it, as the terminal sends to its foreground process.
        Signals.Interrupt(Assert.Single(Signals.Children(terminal.Id)));

        var run = await Cli.WaitAsync(screen, TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 130, run.ToString());
        Assert.Contains("cancelled: the running statement was cancelled on the server.", run.Out);
        await CliDatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", backend) == 0,
            "the server backend to stop running the refresh",
            TimeSpan.FromSeconds(20));
    }
}
