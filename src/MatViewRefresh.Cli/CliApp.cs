using System.CommandLine;
using System.Runtime.InteropServices;
using MatViewRefresh.Cli.Commands;
using Npgsql;

namespace MatViewRefresh.Cli;

/// <summary>Builds the command tree, runs one command, and maps every failure to a documented exit code and one line on stderr.</summary>
internal static class CliApp
{
    public const string ConnectionHelp = """
        Connection: --connection "Host=…;Database=…;Username=…", else $MATVIEWREFRESH_CONNECTION,
        else the PG* variables psql reads (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE).
        Colours are off when the output is redirected or NO_COLOR is set.
        """;

    public static RootCommand Build(TextWriter output, TextWriter error, Func<CancellationToken> token, Action<int> setExit)
    {
        var root = new RootCommand($"""
            matview-refresh: refresh, list, check and troubleshoot PostgreSQL materialized views.

            Examples:
              matview-refresh demo
              matview-refresh refresh --all --parallel 4
              matview-refresh refresh --views sales.mv_daily --include-dependents --dry-run
              matview-refresh list
              matview-refresh status --max-age 15m || alert "views are stale"
              matview-refresh history --view sales.mv_daily --since 24h
              matview-refresh doctor
              matview-refresh schedule add nightly --cron "0 3 * * *" --all

            {ConnectionHelp}

            {ExitCodes.HelpText}
            """)
        {
            GlobalOptions.Connection,
            GlobalOptions.ConnectTimeout,
            GlobalOptions.LogSchema,
            GlobalOptions.Verbose,
        };

        void Bind(Command command, Func<CliContext, Task<int>> run) =>
            command.SetAction(async (parse, _) =>
            {
                var code = await run(new CliContext(parse, output, error, token()));
                setExit(code);
                return code;
            });

        void Add(Command command, Func<CliContext, Task<int>> run)
        {
            Bind(command, run);
            root.Add(command);
        }

        Add(RefreshCommandLine.Command, RefreshCommandLine.RunAsync);
        Add(ListCommandLine.Command, ListCommandLine.RunAsync);
        Add(StatusCommandLine.Command, StatusCommandLine.RunAsync);
        Add(HistoryCommandLine.Command, HistoryCommandLine.RunAsync);
        Add(DoctorCommandLine.Command, DoctorCommandLine.RunAsync);
        root.Add(ScheduleCommandLine.Build(Bind));
        Add(DemoCommandLine.Command, DemoCommandLine.RunAsync);
        return root;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        // Ctrl+C (SIGINT, from a terminal or not) and SIGTERM: the handler returns at once and cancels on the thread pool, so that
        // the cancellation callbacks (Npgsql's cancel request to the server, continuations writing to the console) never run on
        // the runtime's signal thread.
        using var cancel = new CancellationTokenSource();
        void Cancel() => ThreadPool.QueueUserWorkItem(_ => cancel.Cancel());
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        var exit = ExitCodes.Ok;
        var root = Build(output, error, () => cancel.Token, code => exit = code);
        ParseResult parse;
        try
        {
            parse = root.Parse(args);
        }
        catch (InvalidOperationException e)
        {
            await error.WriteLineAsync("error: " + e.Message + " (see 'matview-refresh --help')");
            return ExitCodes.Usage;
        }

        var verbose = args.Contains("--verbose") || args.Contains("-v");
        var wantsHelp = args.Any(a => a is "--help" or "-h" or "-?" or "--version");
        if (parse.Errors.Count > 0 && !wantsHelp)
        {
            var command = parse.CommandResult.Command;
            var path = command is RootCommand ? "matview-refresh" : "matview-refresh " + string.Join(' ', CommandPath(command, parse));
            await error.WriteLineAsync($"error: {parse.Errors[0].Message} (see '{path} --help')");
            return ExitCodes.Usage;
        }

        try
        {
            var code = await parse.InvokeAsync(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
                Output = output,
                Error = error,
            }, cancel.Token);
            return parse.CommandResult.Command is RootCommand && !wantsHelp ? ExitCodes.Usage : code;
        }
        catch (Exception e) when (cancel.IsCancellationRequested && IsCancellation(e))
        {
            await error.WriteLineAsync("cancelled: the running statement was cancelled on the server.");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e);
            await error.WriteLineAsync("error: " + message);
            if (verbose)
            {
                await error.WriteLineAsync(e.ToString());
            }

            return code;
        }
    }

    private static IEnumerable<string> CommandPath(Command command, ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null && r.Command is not RootCommand; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, r.Command.Name);
        }

        return names.Count == 0 ? [command.Name] : names;
    }

    private static bool IsCancellation(Exception e) =>
        e is OperationCanceledException || e.InnerException is OperationCanceledException
        || (e is NpgsqlException && e.InnerException is OperationCanceledException or TimeoutException)
        || e is PostgresException { SqlState: "57014" };

    /// <summary>The exit code and the one line for a failure.</summary>
    internal static (int Code, string Message) Classify(Exception e) => e switch
    {
        CliException cli => (cli.ExitCode, cli.Message),
        MaterializedViewNotFoundException notFound => (ExitCodes.Usage, notFound.Message),
        RefreshFunctionNotFoundException function => (ExitCodes.Usage, function.Message),
        ArgumentException argument => (ExitCodes.Usage, StripParameter(argument.Message)),
        _ when CliContext.IsConnectFailure(e) => (ExitCodes.CannotConnect, "Cannot connect: " + CliContext.Describe(e)),
        PostgresException pg => (ExitCodes.StaleOrPartial, $"{pg.SqlState}: {pg.MessageText}"),
        _ => (ExitCodes.StaleOrPartial, CliContext.Describe(e)),
    };

    private static string StripParameter(string message)
    {
        var i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return (i < 0 ? message : message[..i]).ReplaceLineEndings(" ");
    }
}
