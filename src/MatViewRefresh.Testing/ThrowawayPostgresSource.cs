namespace MatViewRefresh.Testing;

/// <summary>Where <see cref="ThrowawayPostgres"/> gets its server from.</summary>
internal enum ThrowawayPostgresSource
{
    /// <summary>An existing server named by a connection string (<c>MATVIEWREFRESH_TEST_CONNECTION</c>).</summary>
    External,

    /// <summary>A throwaway cluster run from the local PostgreSQL server binaries.</summary>
    LocalBinaries,

    /// <summary>A Testcontainers PostgreSQL container on the Docker engine that answered.</summary>
    Container,

    /// <summary>Nothing to run a server with: <see cref="ThrowawayPostgres.StartAsync(ThrowawayPostgresOptions?, CancellationToken)"/> fails, saying how to fix it.</summary>
    None,
}

/// <summary>The order in which <see cref="ThrowawayPostgres"/> looks for a server.</summary>
internal static class ThrowawayPostgresSelection
{
    /// <summary>
    /// Chooses the source: a connection string, else local binaries, else a Docker engine, else none.
    /// Each check runs only when every earlier one said no, so the Docker probe never delays a machine with binaries.
    /// </summary>
    /// <param name="hasConnectionString">Whether a connection string to an existing server is set.</param>
    /// <param name="hasBinaries">Searches for the local server binaries.</param>
    /// <param name="dockerAnswers">Asks whether a Docker engine answers (bounded in time).</param>
    /// <param name="cancellationToken">Cancels the Docker probe.</param>
    internal static async Task<ThrowawayPostgresSource> ChooseAsync(
        bool hasConnectionString,
        Func<bool> hasBinaries,
        Func<CancellationToken, Task<bool>> dockerAnswers,
        CancellationToken cancellationToken)
    {
        if (hasConnectionString)
        {
            return ThrowawayPostgresSource.External;
        }

        if (hasBinaries())
        {
            return ThrowawayPostgresSource.LocalBinaries;
        }

        return await dockerAnswers(cancellationToken).ConfigureAwait(false)
            ? ThrowawayPostgresSource.Container
            : ThrowawayPostgresSource.None;
    }

    /// <summary>The error when neither server binaries nor a Docker engine were found: it names every way out.</summary>
    /// <param name="looked">The folders searched for binaries.</param>
    internal static InvalidOperationException NoServer(IEnumerable<string> looked) =>
        new(
            "No PostgreSQL server to test with: no server binaries (initdb, pg_ctl, postgres) were found (looked in " + string.Join(", ", looked) + ") " +
            "and no Docker engine answered (" + DockerEngine.Describe() + "). Either install the server binaries " +
            "(Debian/Ubuntu: 'apt-get install postgresql'; or set " + ThrowawayPostgresOptions.BinDirectoryVariable + " to the folder holding initdb), " +
            "or start Docker (Docker Desktop, Colima, Rancher Desktop or a Docker engine; set DOCKER_HOST if it is not on the default socket) " +
            "to run PostgreSQL in a Testcontainers container, or set " + ThrowawayPostgresOptions.ConnectionVariable + " to the connection string of an existing server.");
}
