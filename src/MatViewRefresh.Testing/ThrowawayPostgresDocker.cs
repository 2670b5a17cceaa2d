using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;
using Npgsql;
using Testcontainers.PostgreSql;

namespace MatViewRefresh.Testing;

/// <summary>
/// A cheap, bounded check that a Docker engine answers: <c>GET /_ping</c> on <c>DOCKER_HOST</c>, else on the usual
/// sockets (Linux, Docker Desktop, Colima, Rancher Desktop, rootless) or the Windows named pipe.
/// </summary>
internal static class DockerEngine
{
    /// <summary>The longest the whole probe takes.</summary>
    internal static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The endpoints to try, in order.</summary>
    /// <param name="dockerHost">The value of <c>DOCKER_HOST</c>; when set, the only endpoint.</param>
    /// <param name="home">The user's home folder.</param>
    /// <param name="runtimeDirectory">The value of <c>XDG_RUNTIME_DIR</c> (rootless Docker).</param>
    /// <param name="isWindows">Whether the default is the Windows named pipe.</param>
    internal static IReadOnlyList<Uri> Endpoints(string? dockerHost, string? home, string? runtimeDirectory, bool isWindows)
    {
        if (!string.IsNullOrWhiteSpace(dockerHost))
        {
            return Uri.TryCreate(dockerHost, UriKind.Absolute, out var configured) ? [configured] : [];
        }

        if (isWindows)
        {
            return [new Uri("npipe://./pipe/docker_engine")];
        }

        var sockets = new List<string> { "/var/run/docker.sock" };
        if (!string.IsNullOrEmpty(home))
        {
            sockets.AddRange(
                [
                    Path.Combine(home, ".docker", "run", "docker.sock"),
                    Path.Combine(home, ".docker", "desktop", "docker.sock"),
                    Path.Combine(home, ".colima", "default", "docker.sock"),
                    Path.Combine(home, ".rd", "docker.sock"),
                ]);
        }

        if (!string.IsNullOrEmpty(runtimeDirectory))
        {
            sockets.Add(Path.Combine(runtimeDirectory, "docker.sock"));
        }

        return [.. sockets.Select(s => new Uri("unix://" + s))];
    }

    /// <summary>Whether a Docker engine answers on one of <see cref="Endpoints"/>, within <see cref="ProbeTimeout"/>.</summary>
    /// <param name="cancellationToken">Cancels the probe.</param>
    internal static Task<bool> AnswersAsync(CancellationToken cancellationToken) => AnswersAsync(CurrentEndpoints(), ProbeTimeout, cancellationToken);

    /// <summary>Whether a Docker engine answers <c>GET /_ping</c> on one of the endpoints, within the time limit.</summary>
    /// <param name="endpoints">The endpoints (<c>unix://</c>, <c>npipe://</c>, <c>tcp://</c>), tried in order.</param>
    /// <param name="limit">The longest the whole probe takes.</param>
    /// <param name="cancellationToken">Cancels the probe.</param>
    internal static async Task<bool> AnswersAsync(IEnumerable<Uri> endpoints, TimeSpan limit, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        foreach (var endpoint in endpoints)
        {
            if (await PingAsync(endpoint, timeout.Token).ConfigureAwait(false))
            {
                return true;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }

    /// <summary>The endpoints tried, for error messages.</summary>
    internal static string Describe()
    {
        var endpoints = CurrentEndpoints();
        return endpoints.Count == 0
            ? "DOCKER_HOST is not a valid address"
            : "tried " + string.Join(", ", endpoints.Select(e => e.Scheme == "unix" ? e.AbsolutePath : e.ToString()));
    }

    private static IReadOnlyList<Uri> CurrentEndpoints() =>
        Endpoints(
            Environment.GetEnvironmentVariable("DOCKER_HOST"),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
            Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"),
            OperatingSystem.IsWindows());

    private static async Task<bool> PingAsync(Uri endpoint, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            if (stream is null)
            {
                return false;
            }

            if (endpoint.Scheme == "tcp" && Environment.GetEnvironmentVariable("DOCKER_TLS_VERIFY") is { Length: > 0 })
            {
                return true; // a TLS engine: the port accepting a connection is all that can be checked without the client certificates
            }

            await stream.WriteAsync("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            var buffer = new byte[32];
            var read = 0;
            while (read < 12)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            var status = Encoding.ASCII.GetString(buffer, 0, read);
            return status.StartsWith("HTTP/1.", StringComparison.Ordinal) && status.Length >= 12 && status[9..12] == "200";
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or TimeoutException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }

    private static async Task<Stream?> ConnectAsync(Uri endpoint, CancellationToken cancellationToken)
    {
        switch (endpoint.Scheme)
        {
            case "unix":
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(endpoint.AbsolutePath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }

            case "npipe":
            {
                // npipe://./pipe/docker_engine
                var name = endpoint.AbsolutePath.StartsWith("/pipe/", StringComparison.Ordinal) ? endpoint.AbsolutePath["/pipe/".Length..] : endpoint.AbsolutePath.TrimStart('/');
                var pipe = new NamedPipeClientStream(string.IsNullOrEmpty(endpoint.Host) ? "." : endpoint.Host, name, PipeDirection.InOut, PipeOptions.Asynchronous);
                try
                {
                    await pipe.ConnectAsync(cancellationToken).ConfigureAwait(false);
                    return pipe;
                }
                catch
                {
                    await pipe.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }

            case "tcp" or "http" or "https":
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await socket.ConnectAsync(endpoint.Host, endpoint.IsDefaultPort ? 2375 : endpoint.Port, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }

            default:
                return null; // e.g. ssh://: not probed
        }
    }
}

/// <summary>The container path of <see cref="ThrowawayPostgres"/>: a Testcontainers PostgreSQL container.</summary>
internal static class PostgresContainer
{
    /// <summary>Starts a container of <see cref="ThrowawayPostgresOptions.ContainerImage"/> and returns it with the connection string of its <c>postgres</c> database.</summary>
    /// <param name="options">The image and the extra server settings.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    internal static async Task<(IAsyncDisposable Container, string ConnectionString)> StartAsync(ThrowawayPostgresOptions options, CancellationToken cancellationToken)
    {
        // Testcontainers' builder already turns fsync, full_page_writes and synchronous_commit off.
        var builder = new PostgreSqlBuilder(options.ContainerImage).WithCommand("-c", "max_connections=500");
        foreach (var (key, value) in options.ServerSettings)
        {
            builder = builder.WithCommand("-c", key + "=" + value);
        }

        PostgreSqlContainer? container = null;
        try
        {
            container = builder.Build(); // throws when Testcontainers finds no Docker endpoint itself
            await container.StartAsync(cancellationToken).ConfigureAwait(false); // the first start pulls the image: no time limit here
            var connectionString = new NpgsqlConnectionStringBuilder(container.GetConnectionString()) { IncludeErrorDetail = true }.ConnectionString;
            return (container, connectionString);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (container is not null)
            {
                await container.DisposeAsync().ConfigureAwait(false);
            }

            throw new InvalidOperationException(
                $"No PostgreSQL server binaries were found and a Docker engine answered, but the '{options.ContainerImage}' container did not start: {e.Message} " +
                "Install the server binaries (Debian/Ubuntu: 'apt-get install postgresql'; or set " + ThrowawayPostgresOptions.BinDirectoryVariable +
                ") to run PostgreSQL without Docker.",
                e);
        }
    }
}
