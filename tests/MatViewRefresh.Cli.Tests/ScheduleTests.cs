using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.Cli.Tests;

/// <summary>Its own throwaway PostgreSQL with pg_cron loaded; fails (never skips) when pg_cron is not installed (scripts/setup.sh installs it).</summary>
public sealed class PgCronServerFixture : IAsyncLifetime
{
    private ThrowawayPostgres? _server;

    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(d => File.Exists(Path.Combine(d, "lib", "pg_cron.so"))).Order().LastOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("pg_cron is not installed (no /usr/lib/postgresql/*/lib/pg_cron.so): run scripts/setup.sh.");
        }

        var options = new ThrowawayPostgresOptions { ConnectionString = null, BinDirectory = Path.Combine(bin, "bin") };
        options.ServerSettings["shared_preload_libraries"] = "pg_cron";
        options.ServerSettings["cron.database_name"] = "mvr_cli_cron";
        _server = await ThrowawayPostgres.StartAsync(options);
        ConnectionString = await _server.CreateDatabaseAsync("mvr_cli_cron");
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("CREATE EXTENSION pg_cron;" + Sample.Sql("k1"), connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

public sealed class ScheduleTests(PgCronServerFixture cron, CliDatabaseFixture plain) : IClassFixture<PgCronServerFixture>, IClassFixture<CliDatabaseFixture>
{
    private Task<CliRun> RunAsync(params string[] args) => Cli.RunAsync([.. args, "--connection", cron.ConnectionString], null);

    [Fact]
    public async Task Schedule_add_list_and_remove_manage_pg_cron_jobs()
    {
        var add = await RunAsync("schedule", "add", "nightly", "--cron", "0 3 * * *", "--schema", "k1", "--concurrent");
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains("Scheduled nightly", add.Out);

        var list = await RunAsync("schedule", "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var job = Assert.Single(list.Json.GetProperty("schedules").EnumerateArray());
        Assert.Equal("nightly", job.GetProperty("name").GetString());
        Assert.Equal("matview_refresh:nightly", job.GetProperty("job_name").GetString());
        Assert.Equal("0 3 * * *", job.GetProperty("cron").GetString());
        Assert.True(job.GetProperty("active").GetBoolean());
        Assert.Contains("k1.mv_weekly", job.GetProperty("command").GetString());

        var doctor = await RunAsync("doctor", "--json");
        var pgCron = doctor.Json.GetProperty("pg_cron");
        Assert.True(pgCron.GetProperty("installed").GetBoolean());
        Assert.Equal("nightly", Assert.Single(pgCron.GetProperty("jobs").EnumerateArray()).GetProperty("name").GetString());

        var text = await RunAsync("schedule", "list");
        Assert.Contains("nightly", text.Out);
        Assert.Contains("0 3 * * *", text.Out);

        Assert.Equal(0, (await RunAsync("schedule", "remove", "nightly")).ExitCode);
        var again = await RunAsync("schedule", "remove", "nightly");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("No schedule named nightly", again.Out);
        Assert.Empty((await RunAsync("schedule", "list", "--json")).Json.GetProperty("schedules").EnumerateArray());
    }

    [Fact]
    public async Task Schedule_arguments_are_checked_and_a_bad_cron_expression_is_a_usage_error()
    {
        var missingCron = await RunAsync("schedule", "add", "x", "--all");
        Assert.Equal(2, missingCron.ExitCode);
        Assert.Contains("--cron", missingCron.Err);

        var badCron = await RunAsync("schedule", "add", "x", "--cron", "every day", "--all");
        Assert.True(badCron.ExitCode == 2, badCron.ToString());
        Assert.Contains("every day", badCron.Err);
    }

    [Fact]
    public async Task Without_pg_cron_schedule_commands_say_so_and_exit_1()
    {
        var run = await plain.RunAsync("schedule", "list");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("pg_cron", run.Err);
        Assert.Single(run.Err.Trim().Split('\n'));
    }
}
