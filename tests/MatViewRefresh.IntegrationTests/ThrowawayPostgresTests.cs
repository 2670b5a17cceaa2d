using System.Globalization;
using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

public sealed class ThrowawayPostgresTests
{
    [Fact]
    public async Task A_throwaway_server_serves_databases_and_disposing_it_stops_it_and_deletes_its_folder()
    {
        var server = await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null });
        var folder = server.ClusterFolder!;
        var connectionString = await server.CreateDatabaseAsync("fixture_check");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_database() || ' ' || current_setting('fsync') || ' ' || current_setting('listen_addresses')", connection);
            Assert.Equal("fixture_check off 127.0.0.1", await command.ExecuteScalarAsync());
        }

        await server.DisposeAsync();

        Assert.False(Directory.Exists(folder));
        await using var after = new NpgsqlConnection(connectionString);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => after.OpenAsync());
    }

    [Fact]
    public async Task Missing_server_binaries_fail_with_a_message_saying_how_to_get_them()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(
            () => ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null, BinDirectory = "/nonexistent/pg/bin" }));

        Assert.Contains("/nonexistent/pg/bin", e.Message);
        Assert.Contains("apt-get install postgresql", e.Message);
        Assert.Contains(ThrowawayPostgresOptions.ConnectionVariable, e.Message);
    }

    [Fact]
    public async Task Clusters_left_behind_by_dead_processes_are_swept_on_the_next_start()
    {
        var abandoned = Path.Combine(Path.GetTempPath(), "matviewrefresh-pg", "cluster-abandoned-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(abandoned);
        await File.WriteAllTextAsync(Path.Combine(abandoned, "owner.pid"), int.MaxValue.ToString(CultureInfo.InvariantCulture));

        await using var server = await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null });

        Assert.False(Directory.Exists(abandoned));
    }

    [Fact]
    public async Task A_killed_process_leaves_no_server_behind()
    {
        // The IngestApi sample starts a throwaway server when it has no connection string; kill it hard.
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IngestApi.dll"));
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add("http://127.0.0.1:0");
        info.Environment.Remove("ConnectionStrings__Default");
        info.Environment.Remove("MATVIEWREFRESH_CONNECTION");
        using var child = System.Diagnostics.Process.Start(info)!;
        var root = Path.Combine(Path.GetTempPath(), "matviewrefresh-pg");
        string? folder = null;
        var postmaster = 0;
        try
        {
            await DatabaseFixture.EventuallyAsync(
                () =>
                {
                    folder = Directory.Exists(root)
                        ? Directory.GetDirectories(root, $"cluster-{child.Id}-*").FirstOrDefault(f => File.Exists(Path.Combine(f, "data", "postmaster.pid")))
                        : null;
                    try
                    {
                        // The file can go again between the two looks (a start retried on another port): read it here.
                        postmaster = folder is null ? 0 : int.Parse(File.ReadLines(Path.Combine(folder, "data", "postmaster.pid")).First(), CultureInfo.InvariantCulture);
                    }
                    catch (Exception e) when (e is IOException or FormatException or InvalidOperationException)
                    {
                        postmaster = 0;
                    }

                    return Task.FromResult(postmaster > 0);
                },
                "the child's server to start",
                TimeSpan.FromSeconds(60));
        }
        finally
        {
            child.Kill(entireProcessTree: false);
        }

        await child.WaitForExitAsync();

        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(!Directory.Exists(folder)), "the watchdog to remove the cluster", TimeSpan.FromSeconds(30));
        await DatabaseFixture.EventuallyAsync(() => Task.FromResult(!File.Exists($"/proc/{postmaster}/status")), "the server to stop", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task An_existing_server_named_by_the_connection_variable_is_used_instead_of_starting_one()
    {
        var shared = await SharedServer.GetAsync();

        await using var external = await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = shared.ConnectionString });
        var database = await external.CreateDatabaseAsync();

        Assert.True(external.IsExternal);
        Assert.Null(external.ClusterFolder);
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
    }
}
