using System.Diagnostics;

namespace MatViewRefresh.Cli.Tests;

public sealed class PackAndDemoTests(CliDatabaseFixture db) : IClassFixture<CliDatabaseFixture>
{
    [Fact]
    public async Task The_packed_tool_installs_with_dotnet_tool_install_and_the_installed_command_lists_views()
    {
        await db.ExecuteAsync(Sample.Sql("p1"));
        var folder = Directory.CreateTempSubdirectory("mvr-cli-pack-").FullName;
        try
        {
            // A version of its own, so that no package of the same version cached by an earlier run is installed instead.
            var version = "0.1.0-clitest." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
            var packages = Path.Combine(folder, "packages");
            foreach (var project in new[] { "src/MatViewRefresh", "src/MatViewRefresh.Testing", "src/MatViewRefresh.Cli" })
            {
                await DotnetAsync("pack", project, "-c", Cli.Configuration, "--no-build", "-o", packages, "-p:PackageVersion=" + version);
            }

            Assert.Contains($"MatViewRefresh.Cli.{version}.nupkg", Directory.GetFiles(packages).Select(Path.GetFileName));
            var tools = Path.Combine(folder, "tools");
            await DotnetAsync("tool", "install", "--tool-path", tools, "--add-source", packages, "--version", version, "MatViewRefresh.Cli");

            var run = await Cli.RunAsync(["list", "--connection", db.ConnectionString], null, executable: Path.Combine(tools, "matview-refresh"));

            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains("p1.mv_daily", run.Out);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Demo_starts_a_throwaway_server_refreshes_sample_views_with_progress_and_shows_list_and_history()
    {
        var run = await Cli.RunAsync(["demo"], null, timeout: TimeSpan.FromMinutes(2));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("3 view(s) would be refreshed in 2 level(s)", run.Out);
        Assert.Contains("ok  sales.mv_monthly_sales: concurrent", run.Out);
        Assert.Contains("3 refreshed, 0 failed, 0 skipped", run.Out);
        Assert.Contains("no: no unique index", run.Out);
        Assert.Contains("5 run(s): 5 ok, 0 failed (100% success)", run.Out);
    }

    private static async Task DotnetAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = Cli.RepositoryRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"dotnet {string.Join(' ', args)} exited {process.ExitCode}:\n{await output}\n{await error}");
    }
}
