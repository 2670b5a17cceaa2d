using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.Cli.Tests;

/// <summary>One throwaway PostgreSQL for the whole test run (stopped at process exit, or by its watchdog if the run is killed).</summary>
internal static class SharedServer
{
    private static readonly Lazy<Task<ThrowawayPostgres>> Server = new(() => ThrowawayPostgres.StartAsync());

    public static Task<ThrowawayPostgres> GetAsync() => Server.Value;
}

/// <summary>What one run of the tool printed and returned.</summary>
public sealed record CliRun(int ExitCode, string Out, string Err)
{
    public JsonElement Json => JsonDocument.Parse(Out).RootElement;

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>The built tool, run as a process (dotnet matview-refresh.dll) with a clean environment.</summary>
public static class Cli
{
    public static string ToolPath { get; } = Metadata("CliPath");

    public static string RepositoryRoot { get; } = Metadata("RepositoryRoot");

    public static string Configuration { get; } = Metadata("Configuration");

    private static readonly string[] ConnectionVariables =
        ["MATVIEWREFRESH_CONNECTION", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGCONNECT_TIMEOUT", "NO_COLOR"];

    private static string Metadata(string key) =>
        typeof(Cli).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, string? executable = null)
    {
        var info = new ProcessStartInfo(executable ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (executable is null)
        {
            info.ArgumentList.Add(ToolPath);
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var name in ConnectionVariables)
        {
            info.Environment.Remove(name);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        return info;
    }

    public static Task<CliRun> RunAsync(params string[] args) => RunAsync(args, null);

    public static async Task<CliRun> RunAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, string? executable = null, TimeSpan? timeout = null)
    {
        using var process = Process.Start(StartInfo(args, environment, executable))!;
        var run = await WaitAsync(process, timeout ?? TimeSpan.FromSeconds(90));
        return run;
    }

    /// <summary>Waits for the process to end by itself (killed and failed after a generous bound), with what it printed.</summary>
    public static Task<CliRun> WaitAsync(Process process, TimeSpan timeout) => WaitAsync(process, process.StandardOutput.ReadToEndAsync(), timeout);

    /// <summary>As <see cref="WaitAsync(Process, TimeSpan)"/>, for a process whose output is being watched while it runs.</summary>
    public static Task<CliRun> WaitAsync(WatchedOutput watched, TimeSpan timeout) => WaitAsync(watched.Process, watched.AllAsync(), timeout);

    private static async Task<CliRun> WaitAsync(Process process, Task<string> stdout, TimeSpan timeout)
    {
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"matview-refresh did not end within {timeout}: {await stdout}\n{await stderr}");
        }

        return new CliRun(process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>
/// Reads a running process's standard output as it comes, so a test can wait for what a user would see on the screen
/// (say, the live table showing a view) before acting.
/// </summary>
public sealed class WatchedOutput
{
    private readonly StringBuilder _text = new();
    private readonly Lock _gate = new();
    private readonly Task _reading;

    public WatchedOutput(Process process)
    {
        Process = process;
        _reading = ReadAsync();
    }

    public Process Process { get; }

    /// <summary>What has been printed so far.</summary>
    public string Text
    {
        get
        {
            lock (_gate)
            {
                return _text.ToString();
            }
        }
    }

    /// <summary>Everything printed, once the process has closed its output.</summary>
    public async Task<string> AllAsync()
    {
        await _reading;
        return Text;
    }

    private async Task ReadAsync()
    {
        var buffer = new char[4096];
        int read;
        while ((read = await Process.StandardOutput.ReadAsync(buffer)) > 0)
        {
            lock (_gate)
            {
                _text.Append(buffer, 0, read);
            }
        }
    }
}

/// <summary>A fresh database per test class on the shared server; fails (never skips) when no server can be had.</summary>
public sealed class CliDatabaseFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = string.Empty;

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var server = await SharedServer.GetAsync();
        ConnectionString = await server.CreateDatabaseAsync();
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    public async Task DisposeAsync() => await DataSource.DisposeAsync();

    /// <summary>Runs the tool against this database (--connection).</summary>
    public Task<CliRun> RunAsync(params string[] args) => Cli.RunAsync([.. args, "--connection", ConnectionString], null);

    /// <summary>Starts the tool against this database without waiting for it.</summary>
    public Process Start(params string[] args) => Process.Start(Cli.StartInfo([.. args, "--connection", ConnectionString]))!;

    public async Task ExecuteAsync(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Awaits a condition the test cannot be told about directly (a server-side state), polling until a deadline.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Timed out waiting for: " + what);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20));
        }
    }
}
