using System.Net;
using System.Net.Sockets;

namespace MatViewRefresh.Cli.Tests;

/// <summary>Bad arguments exit 2 with one line naming the value, before anything runs; an unreachable server exits 3.</summary>
public sealed class UsageTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task An_unknown_view_exits_2_naming_it_and_close_names_and_refreshes_nothing()
    {
        await db.ExecuteAsync(Sample.Sql("u1"));

        var run = await db.RunAsync("refresh", "--views", "u1.mv_dialy");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("u1.mv_dialy", run.Err);
        Assert.Contains("u1.mv_daily", run.Err);
        Assert.DoesNotContain("   at ", run.Err);
        Assert.Equal(string.Empty, run.Out);
    }

    [Theory]
    [InlineData("u3", "history", "--view")]
    [InlineData("u4", "status", "--views")]
    public async Task An_unknown_view_in_a_read_command_exits_2_naming_it_and_close_names(string schema, string command, string option)
    {
        await db.ExecuteAsync(Sample.Sql(schema));

        var run = await db.RunAsync(command, option, schema + ".mv_dialy");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(schema + ".mv_dialy", run.Err);
        Assert.Contains(schema + ".mv_daily", run.Err);
        Assert.DoesNotContain("   at ", run.Err);
    }

    [Theory]
    [InlineData("status")]
    [InlineData("list")]
    [InlineData("history")]
    public async Task A_log_schema_without_a_refresh_log_exits_2_naming_it_rather_than_reporting_never_refreshed(string command)
    {
        var run = await db.RunAsync(command, "--log-schema", "matview_refrsh");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("'matview_refrsh'", run.Err);
        Assert.Equal(string.Empty, run.Out);
    }

    [Fact]
    public async Task An_unknown_schema_exits_2_naming_it()
    {
        var run = await db.RunAsync("status", "--schema", "no_such_schema");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("no_such_schema", run.Err);
    }

    [Theory]
    [InlineData("-3", "refresh", "--all", "--incremental", "--days", "-3")]
    [InlineData("0", "refresh", "--all", "--incremental", "--days", "0")]
    [InlineData("'5x'", "refresh", "--all", "--lock-timeout", "5x")]
    [InlineData("'ten minutes'", "refresh", "--all", "--statement-timeout", "ten minutes")]
    [InlineData("'yesterday'", "history", "--since", "yesterday")]
    [InlineData("'1y'", "status", "--max-age", "1y")]
    [InlineData("--full and --incremental", "refresh", "--all", "--full", "--incremental")]
    [InlineData("--incremental applies to window targets", "refresh", "--all", "--incremental")]
    [InlineData("--smart applies to window targets", "refresh", "--views", "v", "--smart")]
    [InlineData("--days 7 needs --incremental", "refresh", "--all", "--days", "7")]
    [InlineData("--parallel must be between 1 and 64, not 0", "refresh", "--all", "--parallel", "0")]
    [InlineData("--limit must be between 1 and 10000, not 0", "history", "--limit", "0")]
    [InlineData("--parallel expects a whole number, not 'abc'", "refresh", "--all", "--parallel", "abc")]
    [InlineData("--limit expects a whole number, not 'x'", "history", "--limit", "x")]
    [InlineData("--connect-timeout must be between 1 and 3600, not 0", "list", "--connect-timeout", "0")]
    [InlineData("Choose the views to refresh", "refresh")]
    [InlineData("'mv daily'", "refresh", "--views", "mv daily")]
    [InlineData("--bogus", "list", "--bogus")]
    [InlineData("--full and --concurrent", "refresh", "--all", "--full", "--concurrent")]
    public async Task A_bad_argument_exits_2_with_one_line_naming_the_value(string named, params string[] args)
    {
        // An unreachable server: a usage error is reported before any connection is tried.
        var run = await Cli.RunAsync([.. args, "--connection", "Host=127.0.0.1;Port=1;Timeout=1"], null);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(named, run.Err);
        Assert.Single(run.Err.Trim().Split('\n'));
        Assert.Equal(string.Empty, run.Out);
    }

    [Theory]
    [InlineData("--lock-timeout", "1h30m")]
    [InlineData("--lock-timeout", "500ms")]
    [InlineData("--statement-timeout", "00:05:00")]
    [InlineData("--statement-timeout", "0")]
    public async Task Durations_are_read_as_people_write_them(string option, string value)
    {
        await db.ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS u3; CREATE MATERIALIZED VIEW IF NOT EXISTS u3.mv AS SELECT 1 AS x");

        var run = await db.RunAsync("refresh", "--schema", "u3", "--dry-run", option, value);

        Assert.True(run.ExitCode == 0, run.ToString());
    }

    [Fact]
    public async Task A_bad_connection_string_exits_2_and_does_not_print_it()
    {
        var run = await Cli.RunAsync("list", "--connection", "Host=x;Password=secret;Bogus Key=1");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("--connection", run.Err);
        Assert.DoesNotContain("secret", run.Err);
    }

    [Fact]
    public async Task An_unreachable_server_exits_3_within_the_connect_timeout_naming_host_and_port()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var run = await Cli.RunAsync(["list", "--connection", $"Host=127.0.0.1;Port={port};Database=x;Username=x", "--connect-timeout", "2"], null);

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains($"127.0.0.1:{port}", run.Err);
        Assert.Single(run.Err.Trim().Split('\n'));

        var verbose = await Cli.RunAsync(["status", "--verbose", "--connection", $"Host=127.0.0.1;Port={port};Database=x;Username=x", "--connect-timeout", "2"], null);
        Assert.Equal(3, verbose.ExitCode);
        Assert.Contains("   at ", verbose.Err);
    }

    [Fact]
    public async Task A_database_that_does_not_exist_exits_3_naming_it()
    {
        var connection = new Npgsql.NpgsqlConnectionStringBuilder(db.ConnectionString) { Database = "no_such_database" }.ConnectionString;

        var run = await Cli.RunAsync(["list", "--connection", connection], null);

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("no_such_database", run.Err);
        Assert.Contains("3D000", run.Err);
    }

    [Fact]
    public async Task The_connection_comes_from_MATVIEWREFRESH_CONNECTION_else_the_PG_variables()
    {
        await db.ExecuteAsync(Sample.Sql("u2"));
        var b = new Npgsql.NpgsqlConnectionStringBuilder(db.ConnectionString);

        var fromVariable = await Cli.RunAsync(["list", "--json"], new Dictionary<string, string> { ["MATVIEWREFRESH_CONNECTION"] = db.ConnectionString });
        var fromPg = await Cli.RunAsync(["list", "--json"], new Dictionary<string, string>
        {
            ["PGHOST"] = b.Host!,
            ["PGPORT"] = b.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PGDATABASE"] = b.Database!,
            ["PGUSER"] = b.Username!,
            ["PGPASSWORD"] = b.Password ?? string.Empty,
            ["PGSSLMODE"] = "disable",
        });

        Assert.True(fromVariable.ExitCode == 0, fromVariable.ToString());
        Assert.True(fromPg.ExitCode == 0, fromPg.ToString());
        Assert.Contains("u2.mv_daily", fromVariable.Json.GetProperty("views").EnumerateArray().Select(v => v.GetProperty("view").GetString()));
        Assert.Equal(fromVariable.Out, fromPg.Out);
    }

    [Fact]
    public async Task Help_shows_examples_connection_and_exit_codes()
    {
        var root = await Cli.RunAsync("--help");
        var refresh = await Cli.RunAsync("refresh", "--help");
        var doctor = await Cli.RunAsync("doctor", "--help");

        Assert.Equal(0, root.ExitCode);
        Assert.Contains("Exit codes:", root.Out);
        Assert.Contains("130", root.Out);
        Assert.Contains("PGHOST", root.Out);
        Assert.Equal(0, refresh.ExitCode);
        Assert.Contains("Examples:", refresh.Out);
        Assert.Contains("--dry-run", refresh.Out);
        Assert.Contains("Examples:", doctor.Out);
    }
}
