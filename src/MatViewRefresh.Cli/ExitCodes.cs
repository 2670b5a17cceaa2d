namespace MatViewRefresh.Cli;

/// <summary>The documented exit codes of matview-refresh (README, --help).</summary>
internal static class ExitCodes
{
    /// <summary>Everything worked; every selected view is fresh.</summary>
    public const int Ok = 0;

    /// <summary>A view is stale or its last refresh failed; a refresh failed or was skipped for some views; the command failed.</summary>
    public const int StaleOrPartial = 1;

    /// <summary>Bad arguments: an unknown option, view or schema, a bad value. Nothing was run.</summary>
    public const int Usage = 2;

    /// <summary>The server could not be reached or refused the login.</summary>
    public const int CannotConnect = 3;

    /// <summary>Cancelled (Ctrl+C / SIGINT); the running statement was cancelled on the server.</summary>
    public const int Cancelled = 130;

    public const string HelpText = """
        Exit codes:
          0    ok
          1    a view is stale or its last refresh failed; a refresh failed or was skipped (partial); the command failed
          2    usage error: unknown option, view or schema, bad value (nothing was run)
          3    cannot connect to PostgreSQL (unreachable, login refused, database missing)
          130  cancelled (Ctrl+C): the running statement was cancelled on the server
        """;
}

/// <summary>An error that ends the command with one line on stderr and the given exit code.</summary>
internal sealed class CliException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}
