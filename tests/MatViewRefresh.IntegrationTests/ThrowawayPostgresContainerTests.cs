using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The selection on a real machine: local binaries first; the container path when there are none.</summary>
public sealed class ThrowawayPostgresContainerTests
{
    [Fact]
    public async Task With_local_binaries_the_docker_engine_is_never_probed()
    {
        var probed = false;

        await using var server = await ThrowawayPostgres.StartAsync(
            new ThrowawayPostgresOptions { ConnectionString = null },
            ThrowawayPostgres.FindBinDirectory,
            _ =>
            {
                probed = true;
                return Task.FromResult(true);
            },
            CancellationToken.None);

        Assert.False(probed);
        Assert.False(server.IsContainer);
        Assert.False(server.IsExternal);
        Assert.NotNull(server.ClusterFolder);
    }

    /// <summary>
    /// Forces the container path (no binaries, the probe says yes). Where a Docker engine really answers, the
    /// container must serve a database per test class; where none does (this project's machines), Testcontainers
    /// fails and the error must say so and name the way out without Docker.
    /// </summary>
    [Fact]
    public async Task Without_binaries_the_container_path_serves_databases_or_says_why_it_could_not()
    {
        var engineAnswers = await DockerEngine.AnswersAsync(CancellationToken.None);

        var start = ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null }, (_, _) => null, _ => Task.FromResult(true), CancellationToken.None);

        if (engineAnswers)
        {
            await using var server = await start;
            Assert.True(server.IsContainer);
            Assert.Null(server.ClusterFolder);
            var database = await server.CreateDatabaseAsync("container_check");
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_database() || ' ' || current_setting('fsync')", connection);
            Assert.Equal("container_check off", await command.ExecuteScalarAsync());
        }
        else
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => start);
            Assert.Contains("postgres:15-alpine", e.Message);
            Assert.Contains("did not start", e.Message);
            Assert.Contains("apt-get install postgresql", e.Message);
        }
    }
}
