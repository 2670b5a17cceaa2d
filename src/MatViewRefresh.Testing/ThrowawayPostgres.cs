using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace MatViewRefresh.Testing;

/// <summary>
/// A real PostgreSQL server for tests: uses <c>MATVIEWREFRESH_TEST_CONNECTION</c> when set; otherwise, when the
/// local server binaries are found, <c>initdb</c>s a cluster in a temporary folder (as the <c>postgres</c> OS user
/// when running as root), starts it on a free loopback port with <c>fsync</c> off, and stops and deletes it on
/// dispose, at process exit, and — through a watchdog process — when the test run is killed; otherwise, when a
/// Docker engine answers, runs a Testcontainers PostgreSQL container (<see cref="ThrowawayPostgresOptions.ContainerImage"/>),
/// removed on dispose; otherwise fails with a message naming both ways out.
/// </summary>
/// <example>
/// <code>
/// await using var pg = await ThrowawayPostgres.StartAsync();
/// var connectionString = await pg.CreateDatabaseAsync();
/// </code>
/// </example>
public sealed class ThrowawayPostgres : IAsyncDisposable
{
    private const string ServiceUser = "postgres";
    private readonly List<string> _createdDatabases = [];
    private readonly string? _clusterFolder;
    private readonly string? _binDirectory;
    private readonly bool _asServiceUser;
    private readonly IAsyncDisposable? _container;
    private FileStream? _ownerLock;
    private int _disposed;

    private ThrowawayPostgres(string connectionString, string? clusterFolder, string? binDirectory, bool asServiceUser, IAsyncDisposable? container = null)
    {
        ConnectionString = connectionString;
        _container = container;
        _clusterFolder = clusterFolder;
        _binDirectory = binDirectory;
        _asServiceUser = asServiceUser;
        if (clusterFolder is not null)
        {
            AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        }
    }

    /// <summary>Connection string of the server's <c>postgres</c> maintenance database (superuser).</summary>
    public string ConnectionString { get; }

    /// <summary><see langword="true"/> when an existing server (<c>MATVIEWREFRESH_TEST_CONNECTION</c>) is used instead of a throwaway one.</summary>
    public bool IsExternal => _clusterFolder is null && _container is null;

    /// <summary><see langword="true"/> when the server runs in a Testcontainers container (no local binaries were found and a Docker engine answered).</summary>
    public bool IsContainer => _container is not null;

    /// <summary>Folder of the throwaway cluster (data and log), or <see langword="null"/> for an external server or a container.</summary>
    public string? ClusterFolder => _clusterFolder;

    /// <summary>
    /// Connects to the server named by <see cref="ThrowawayPostgresOptions.ConnectionString"/>; else starts a throwaway
    /// server from the local binaries; else, when a Docker engine answers, a PostgreSQL container.
    /// </summary>
    /// <param name="options">The settings; the default reads the environment variables.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="InvalidOperationException">
    /// Neither server binaries nor a Docker engine were found, or the server did not start; the message says how to fix it.
    /// </exception>
    public static Task<ThrowawayPostgres> StartAsync(ThrowawayPostgresOptions? options = null, CancellationToken cancellationToken = default) =>
        StartAsync(options ?? new ThrowawayPostgresOptions(), FindBinDirectory, DockerEngine.AnswersAsync, cancellationToken);

    /// <summary><see cref="StartAsync(ThrowawayPostgresOptions?, CancellationToken)"/> with the binary search and the Docker probe replaceable (for tests).</summary>
    /// <param name="options">The settings.</param>
    /// <param name="findBinDirectory">Returns the binaries' folder (given the configured one), or <see langword="null"/> after adding the places searched to the list.</param>
    /// <param name="dockerAnswers">Whether a Docker engine answers.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    internal static async Task<ThrowawayPostgres> StartAsync(
        ThrowawayPostgresOptions options,
        Func<string?, ICollection<string>, string?> findBinDirectory,
        Func<CancellationToken, Task<bool>> dockerAnswers,
        CancellationToken cancellationToken)
    {
        string? bin = null;
        var looked = new List<string>();
        var source = await ThrowawayPostgresSelection.ChooseAsync(
            !string.IsNullOrWhiteSpace(options.ConnectionString),
            () => (bin = findBinDirectory(options.BinDirectory, looked)) is not null,
            dockerAnswers,
            cancellationToken).ConfigureAwait(false);
        switch (source)
        {
            case ThrowawayPostgresSource.External:
                var external = new ThrowawayPostgres(options.ConnectionString!, null, null, false);
                await external.CheckConnectionAsync(cancellationToken).ConfigureAwait(false);
                return external;
            case ThrowawayPostgresSource.LocalBinaries:
                return await StartLocalAsync(options, bin!, cancellationToken).ConfigureAwait(false);
            case ThrowawayPostgresSource.Container:
                var (container, connectionString) = await PostgresContainer.StartAsync(options, cancellationToken).ConfigureAwait(false);
                var server = new ThrowawayPostgres(connectionString, null, null, false, container);
                try
                {
                    await server.CheckConnectionAsync(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    await container.DisposeAsync().ConfigureAwait(false);
                    throw;
                }

                return server;
            default:
                throw ThrowawayPostgresSelection.NoServer(looked);
        }
    }

    private static async Task<ThrowawayPostgres> StartLocalAsync(ThrowawayPostgresOptions options, string bin, CancellationToken cancellationToken)
    {
        var asServiceUser = OperatingSystem.IsLinux() && Environment.UserName == "root";
        RemoveAbandonedClusters(BaseFolder);

        var folder = Path.Combine(BaseFolder, $"cluster-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(folder);
        var ownerLock = HoldOwnerLock(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "owner.pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        if (asServiceUser)
        {
            await RunAsync("chown", ["-R", ServiceUser, folder], false, cancellationToken).ConfigureAwait(false);
        }

        StartWatchdog(folder, bin, asServiceUser);
        var data = Path.Combine(folder, "data");
        try
        {
            await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-A", "trust", "-U", ServiceUser, "-E", "UTF8", "--no-locale", "--no-sync"], asServiceUser, cancellationToken).ConfigureAwait(false);
            Exception? lastError = null;
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var port = FreeLoopbackPort();
                await WriteSettingsAsync(data, port, options.ServerSettings, cancellationToken).ConfigureAwait(false);
                try
                {
                    await RunAsync(
                        Path.Combine(bin, "pg_ctl"),
                        ["-D", data, "-l", Path.Combine(folder, "postgres.log"), "-w", "-t", ((int)options.StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "start"],
                        asServiceUser,
                        cancellationToken).ConfigureAwait(false);
                    var connectionString = new NpgsqlConnectionStringBuilder
                    {
                        Host = "127.0.0.1",
                        Port = port,
                        Username = ServiceUser,
                        Database = "postgres",
                        IncludeErrorDetail = true,
                    }.ConnectionString;
                    var server = new ThrowawayPostgres(connectionString, folder, bin, asServiceUser) { _ownerLock = ownerLock };
                    await server.CheckConnectionAsync(cancellationToken).ConfigureAwait(false);
                    return server;
                }
                catch (InvalidOperationException e)
                {
                    lastError = e; // most likely the port was taken between probing and starting
                }
            }

            throw new InvalidOperationException($"PostgreSQL did not start; see {Path.Combine(folder, "postgres.log")}.", lastError);
        }
        catch
        {
            await StopClusterAsync(folder, bin, asServiceUser).ConfigureAwait(false);
            await ownerLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    /// <param name="name">The database name; the default is a unique name.</param>
    /// <param name="cancellationToken">Cancels the creation.</param>
    public async Task<string> CreateDatabaseAsync(string? name = null, CancellationToken cancellationToken = default)
    {
        name ??= "test_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("CREATE DATABASE " + SqlIdentifier.Quote(name), connection);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        lock (_createdDatabases)
        {
            _createdDatabases.Add(name);
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Stops the throwaway server and deletes its folder (or removes its container); on an external server, drops the databases created here.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        if (_container is not null)
        {
            await _container.DisposeAsync().ConfigureAwait(false);
            return;
        }

        if (_clusterFolder is null)
        {
            await DropCreatedDatabasesAsync().ConfigureAwait(false);
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await StopClusterAsync(_clusterFolder, _binDirectory!, _asServiceUser).ConfigureAwait(false);
        if (_ownerLock is not null)
        {
            await _ownerLock.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string BaseFolder => Path.Combine(Path.GetTempPath(), "matviewrefresh-pg");

    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            StopClusterAsync(_clusterFolder!, _binDirectory!, _asServiceUser).GetAwaiter().GetResult();
        }
    }

    private async Task CheckConnectionAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException($"Could not connect to the test PostgreSQL server ({new NpgsqlConnectionStringBuilder(ConnectionString) { Password = null }}): {e.Message}", e);
        }
    }

    private async Task DropCreatedDatabasesAsync()
    {
        string[] names;
        lock (_createdDatabases)
        {
            names = [.. _createdDatabases];
        }

        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync().ConfigureAwait(false);
        foreach (var name in names)
        {
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {SqlIdentifier.Quote(name)} WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The folder of the server binaries, or <see langword="null"/> after adding the places searched to <paramref name="looked"/>.</summary>
    /// <param name="configured">The folder asked for explicitly: when its binaries are missing, this throws (no fallback).</param>
    /// <param name="looked">Receives the places searched.</param>
    internal static string? FindBinDirectory(string? configured, ICollection<string> looked)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            // Asked for explicitly: no silent fallback to another installation.
            return HasServer(configured) ? configured : throw NoBinaries([configured]);
        }

        var fromPgConfig = TryPgConfigBinDirectory();
        if (fromPgConfig is not null)
        {
            if (HasServer(fromPgConfig))
            {
                return fromPgConfig;
            }

            looked.Add(fromPgConfig);
        }

        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var newest = Directory.GetDirectories(debianRoot)
                .Select(d => (Folder: Path.Combine(d, "bin"), Version: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => HasServer(d.Folder))
                .OrderByDescending(d => d.Version)
                .FirstOrDefault();
            if (newest.Folder is not null)
            {
                return newest.Folder;
            }
        }

        looked.Add(debianRoot + "/*/bin");
        foreach (var candidate in new[] { "/usr/local/pgsql/bin", "/usr/lib/postgresql/bin" })
        {
            if (HasServer(candidate))
            {
                return candidate;
            }

            looked.Add(candidate);
        }

        return null;
    }

    private static InvalidOperationException NoBinaries(IEnumerable<string> looked) =>
        new(
            "No PostgreSQL server binaries (initdb, pg_ctl, postgres) were found; looked in " + string.Join(", ", looked) + ". " +
            "Install them (Debian/Ubuntu: 'apt-get install postgresql'), set " + ThrowawayPostgresOptions.BinDirectoryVariable +
            " to the folder holding initdb, or set " + ThrowawayPostgresOptions.ConnectionVariable + " to the connection string of an existing server. " +
            "A folder set explicitly is never replaced by a Docker container; unset it to search the usual places and, failing those, use a running Docker engine.");

    private static bool HasServer(string folder) =>
        File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl")) && File.Exists(Path.Combine(folder, "postgres"));

    private static string? TryPgConfigBinDirectory()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("pg_config", "--bindir") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // pg_config is not on PATH
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WriteSettingsAsync(string data, int port, IDictionary<string, string> extra, CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["port"] = port.ToString(CultureInfo.InvariantCulture),
            ["listen_addresses"] = "'127.0.0.1'",
            ["unix_socket_directories"] = "''",
            ["fsync"] = "off",
            ["synchronous_commit"] = "off",
            ["full_page_writes"] = "off",
            ["max_connections"] = "500",
            ["shared_buffers"] = "64MB",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
        }

        // postgresql.auto.conf is read last, so these win over postgresql.conf; rewritten on each start attempt.
        var lines = settings.Select(kv => $"{kv.Key} = {kv.Value}");
        await File.WriteAllLinesAsync(Path.Combine(data, "postgresql.auto.conf"), lines, cancellationToken).ConfigureAwait(false);
    }

    private static void StartWatchdog(string folder, string bin, bool asServiceUser)
    {
        // Runs in its own session, so it outlives a killed test host and cleans up after it.
        var stop = (asServiceUser ? $"runuser -u {ServiceUser} -- " : string.Empty) + $"'{bin}/pg_ctl' -D '{folder}/data' -m immediate stop";
        // rm is retried: a server process still exiting can re-create a file while the folder is being removed.
        var script = $"while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 1; done; " +
                     $"if [ -d '{folder}' ]; then {stop} >/dev/null 2>&1; " +
                     $"for i in 1 2 3 4 5 6 7 8 9 10; do rm -rf '{folder}' 2>/dev/null; [ -e '{folder}' ] || break; sleep 1; done; fi";
        try
        {
            var info = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "sh", "-c", script })
            {
                info.ArgumentList.Add(arg);
            }

            using var _ = Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No setsid: clean-up then relies on dispose, process exit and the next run's sweep.
        }
    }

    /// <summary>
    /// Opens the cluster folder's <c>owner.lock</c> exclusively (an advisory <c>flock</c> on Unix) for as long as the cluster
    /// lives; the kernel releases it when the process dies, however it dies.
    /// </summary>
    internal static FileStream HoldOwnerLock(string folder) =>
        new(Path.Combine(folder, "owner.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);

    /// <summary>
    /// Deletes clusters whose owner is gone. A cluster is in use while its <c>owner.lock</c> is held — a test of liveness
    /// that works across PID namespaces (containers, sandboxes sharing /tmp), where the owner's pid may mean nothing
    /// here. Folders from older versions, without a lock file, fall back to the pid in <c>owner.pid</c>.
    /// </summary>
    internal static void RemoveAbandonedClusters(string baseFolder)
    {
        Directory.CreateDirectory(baseFolder);
        foreach (var folder in Directory.GetDirectories(baseFolder, "cluster-*"))
        {
            var lockFile = Path.Combine(folder, "owner.lock");
            var ownerFile = Path.Combine(folder, "owner.pid");
            if (File.Exists(lockFile))
            {
                try
                {
                    using (new FileStream(lockFile, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                    {
                        // We got the lock: nobody holds it, the owner is gone.
                    }
                }
                catch (IOException)
                {
                    continue; // held: in use (or just removed by its owner)
                }
                catch (UnauthorizedAccessException)
                {
                    continue;
                }
            }
            else if (!File.Exists(ownerFile) && Directory.GetCreationTimeUtc(folder) > TimeProvider.System.GetUtcNow().UtcDateTime.AddMinutes(-1))
            {
                continue; // another process is creating it right now
            }
            else if (File.Exists(ownerFile)
                && int.TryParse(File.ReadAllText(ownerFile), CultureInfo.InvariantCulture, out var owner)
                && IsAlive(owner))
            {
                continue;
            }

            TryDelete(folder);
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task StopClusterAsync(string folder, string bin, bool asServiceUser)
    {
        var data = Path.Combine(folder, "data");
        if (File.Exists(Path.Combine(data, "postmaster.pid")))
        {
            try
            {
                await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], asServiceUser, CancellationToken.None).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Already stopped.
            }
        }

        // A server process still exiting can re-create a file while the folder is being removed: try again briefly.
        for (var attempt = 0; attempt < 20 && Directory.Exists(folder); attempt++)
        {
            TryDelete(folder);
            if (Directory.Exists(folder))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
            }
        }
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asServiceUser, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(asServiceUser ? "runuser" : file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        if (asServiceUser)
        {
            foreach (var arg in new[] { "-u", ServiceUser, "--", file })
            {
                info.ArgumentList.Add(arg);
            }
        }

        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'{Path.GetFileName(file)} {string.Join(' ', arguments)}' exited with {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()} {(await stdout.ConfigureAwait(false)).Trim()}");
        }
    }
}
