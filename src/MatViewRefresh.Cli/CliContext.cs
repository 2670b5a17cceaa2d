using System.CommandLine;
using System.Net.Sockets;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Spectre.Console;

namespace MatViewRefresh.Cli;

/// <summary>The options every command shares: where to connect, how to print.</summary>
internal static class GlobalOptions
{
    public static readonly Option<string?> Connection = new("--connection", "-c")
    {
        Description = "Npgsql connection string (Host=…;Database=…;Username=…). Default: $MATVIEWREFRESH_CONNECTION, else the PG* variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE) as psql reads them.",
        HelpName = "connection-string",
        Recursive = true,
    };

    public static readonly Option<int?> ConnectTimeout = new("--connect-timeout")
    {
        Description = "Seconds to wait for the server before giving up with exit code 3. Default: the connection string's Timeout, else $PGCONNECT_TIMEOUT, else 15.",
        HelpName = "seconds",
        Recursive = true,
        CustomParser = Numbers.Between(1, 3600),
    };

    public static readonly Option<string> LogSchema = new("--log-schema")
    {
        Description = "Schema of the refresh log tables (MatViewRefresh:Schema).",
        DefaultValueFactory = _ => "matview_refresh",
        Recursive = true,
    };

    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Print stack traces with errors.",
        Recursive = true,
    };

    public static Option<bool> Json() => new("--json") { Description = "Print JSON (snake_case) instead of tables, for scripts." };
}

/// <summary>What a running command needs: its parse result, the console, the connection, the services.</summary>
internal sealed class CliContext(ParseResult parse, TextWriter output, TextWriter error, CancellationToken cancellationToken)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private string? _connectionString;
    private string? _connectionSource;

    public ParseResult Parse { get; } = parse;

    public CancellationToken CancellationToken { get; } = cancellationToken;

    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    public IAnsiConsole Console { get; } = CreateConsole(output);

    public bool Interactive => !System.Console.IsOutputRedirected && ReferenceEquals(Out, System.Console.Out);

    public string LogSchemaName => Parse.GetValue(GlobalOptions.LogSchema) ?? "matview_refresh";

    /// <summary>
    /// Whether the refresh log exists. Missing under the default schema it means nothing was ever refreshed; missing under
    /// a schema given with --log-schema it is a wrong value (exit 2), not views that were never refreshed.
    /// </summary>
    public async Task<bool> LogExistsAsync(NpgsqlConnection connection)
    {
        if (await Commands.CatalogQueries.LogExistsAsync(connection, LogSchemaName, CancellationToken))
        {
            return true;
        }

        if (Parse.GetResult(GlobalOptions.LogSchema) is { Implicit: false })
        {
            throw CliException.Usage($"--log-schema '{LogSchemaName}': there is no refresh log in that schema (no table {LogSchemaName}.refresh_log); the default is matview_refresh.");
        }

        return false;
    }

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);

    public void WriteJson<T>(T value) => Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    public static IAnsiConsole CreateConsole(TextWriter output)
    {
        var redirected = System.Console.IsOutputRedirected || !ReferenceEquals(output, System.Console.Out);
        var noColor = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected || noColor ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(output),
        });
        if (redirected)
        {
            console.Profile.Width = 160;
        }

        return console;
    }

    /// <summary>The connection string: --connection, else $MATVIEWREFRESH_CONNECTION, else the PG* variables.</summary>
    public string ConnectionString
    {
        get
        {
            if (_connectionString is not null)
            {
                return _connectionString;
            }

            var (text, source) = Parse.GetValue(GlobalOptions.Connection) is { Length: > 0 } given ? (given, "--connection")
                : Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION") is { Length: > 0 } env ? (env, "MATVIEWREFRESH_CONNECTION")
                : (null, "the PG* environment variables");
            _connectionSource = source;
            NpgsqlConnectionStringBuilder builder;
            try
            {
                builder = text is null ? FromPgVariables() : new NpgsqlConnectionStringBuilder(text);
            }
            catch (ArgumentException e)
            {
                throw CliException.Usage($"The connection string from {source} is not valid: {e.Message}");
            }

            if (Parse.GetValue(GlobalOptions.ConnectTimeout) is { } timeout)
            {
                builder.Timeout = timeout;
            }
            else if (text is not null && !text.Contains("timeout", StringComparison.OrdinalIgnoreCase)
                     && int.TryParse(Environment.GetEnvironmentVariable("PGCONNECT_TIMEOUT"), out var pgTimeout) && pgTimeout > 0)
            {
                builder.Timeout = pgTimeout;
            }

            if (string.IsNullOrEmpty(builder.ApplicationName))
            {
                builder.ApplicationName = "matview-refresh";
            }

            return _connectionString = builder.ConnectionString;
        }
    }

    /// <summary>Where the server is, for messages (never the password).</summary>
    public string ServerDescription
    {
        get
        {
            var b = new NpgsqlConnectionStringBuilder(ConnectionString);
            return $"{b.Host ?? "localhost"}:{b.Port}/{b.Database ?? b.Username ?? "?"} (from {_connectionSource})";
        }
    }

    internal static NpgsqlConnectionStringBuilder FromPgVariables()
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = Env("PGHOST") ?? "localhost",
            Username = Env("PGUSER") ?? Environment.UserName,
        };
        builder.Database = Env("PGDATABASE") ?? builder.Username;
        if (Env("PGPORT") is { } port)
        {
            builder.Port = int.TryParse(port, out var p) && p is > 0 and < 65536 ? p : throw CliException.Usage($"PGPORT '{port}' is not a port number.");
        }

        if (Env("PGPASSWORD") is { } password)
        {
            builder.Password = password;
        }

        if (Env("PGSSLMODE") is { } sslMode)
        {
            builder.SslMode = sslMode.ToLowerInvariant() switch
            {
                "disable" => SslMode.Disable,
                "allow" => SslMode.Allow,
                "prefer" => SslMode.Prefer,
                "require" => SslMode.Require,
                "verify-ca" => SslMode.VerifyCA,
                "verify-full" => SslMode.VerifyFull,
                _ => throw CliException.Usage($"PGSSLMODE '{sslMode}' is not one of disable, allow, prefer, require, verify-ca, verify-full."),
            };
        }

        if (Env("PGCONNECT_TIMEOUT") is { } timeout && int.TryParse(timeout, out var seconds) && seconds > 0)
        {
            builder.Timeout = seconds;
        }

        return builder;
    }

    /// <summary>Opens a connection (exit code 3 when the server cannot be reached or refuses the login).</summary>
    public async Task<NpgsqlConnection> ConnectAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        try
        {
            await connection.OpenAsync(CancellationToken);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException && !CancellationToken.IsCancellationRequested)
        {
            // Whatever fails while opening is "cannot connect": refused, unreachable, not PostgreSQL, login refused, no such database.
            await connection.DisposeAsync();
            throw new CliException(ExitCodes.CannotConnect, $"Cannot connect to {ServerDescription}: {Describe(e)}", e);
        }
    }

    /// <summary>The library's services over this connection, as an app registers them.</summary>
    public ServiceProvider CreateServices(bool autoCreateSchema, Action<IServiceCollection>? more = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(ConnectionString));
        more?.Invoke(services);
        services.AddMatViewRefresh(o =>
        {
            o.Schema = LogSchemaName;
            o.AutoCreateSchema = autoCreateSchema;
        });
        return services.BuildServiceProvider();
    }

    internal static bool IsConnectFailure(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState is "28P01" or "28000" or "3D000" or "57P03" or "53300",
        NpgsqlException { InnerException: SocketException or TimeoutException or IOException } => true,
        NpgsqlException n when n.Message.Contains("timeout", StringComparison.OrdinalIgnoreCase) => true,
        SocketException or TimeoutException => true,
        _ => false,
    };

    internal static string Describe(Exception e)
    {
        if (e is PostgresException pg)
        {
            return $"{pg.SqlState}: {pg.MessageText}";
        }

        var inner = e;
        while (inner.InnerException is not null && inner is NpgsqlException)
        {
            inner = inner.InnerException;
        }

        return inner.Message.ReplaceLineEndings(" ");
    }
}
