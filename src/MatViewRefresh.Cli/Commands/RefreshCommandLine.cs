using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh refresh</c>: refreshes views in dependency order with live progress, or prints the plan (--dry-run).</summary>
internal static class RefreshCommandLine
{
    private static readonly SelectionOptions Selection = new();
    private static readonly Option<bool> Full = new("--full") { Description = "REFRESH MATERIALIZED VIEW (blocks readers while it runs)." };
    private static readonly Option<bool> Concurrent = new("--concurrent") { Description = "REFRESH … CONCURRENTLY (readers not blocked; fails without a usable unique index)." };
    private static readonly Option<bool> Auto = new("--auto") { Description = "CONCURRENTLY where the view allows it, else full (the default)." };
    private static readonly Option<bool> Smart = new("--smart") { Description = "Window targets only (mart tables kept by date window, defined in application code): refused here, see README." };
    private static readonly Option<bool> Incremental = new("--incremental") { Description = "Window targets only (defined in application code): refused here, see README." };
    private static readonly Option<int?> Days = new("--days") { Description = "Days an incremental window refresh replaces (1 to 36600); window targets only.", HelpName = "N", CustomParser = Numbers.Between(1, 36_600) };
    private static readonly Option<bool> IncludeDependents = new("--include-dependents") { Description = "Also refresh every view downstream of the selected ones." };
    private static readonly Option<int?> Parallel = new("--parallel") { Description = "Independent views refreshed at once (1 to 64). Default 1.", HelpName = "N", CustomParser = Numbers.Between(1, 64) };
    private static readonly Option<bool> DryRun = new("--dry-run") { Description = "Print the dependency-ordered plan, each view's mode and why; refresh nothing." };
    private static readonly Option<TimeSpan?> LockTimeout = new("--lock-timeout") { Description = "lock_timeout of each refresh (" + Durations.Help + "). Default 30s; 0 waits forever.", CustomParser = Durations.Parse, HelpName = "duration" };
    private static readonly Option<TimeSpan?> StatementTimeout = new("--statement-timeout") { Description = "statement_timeout of each refresh. Default none.", CustomParser = Durations.Parse, HelpName = "duration" };
    private static readonly Option<bool> Json = GlobalOptions.Json();

    public static Command Command { get; } = Create();

    private static Command Create()
    {
        var command = new Command("refresh", """
            Refresh materialized views in dependency order (independent ones in parallel), with live progress.
            A view whose input failed is skipped, not refreshed from stale data. Ctrl+C cancels the running statement on the server (exit 130).

            Examples:
              matview-refresh refresh --all
              matview-refresh refresh --views mv_daily_sales sales.mv_hourly --concurrent
              matview-refresh refresh --schema sales --include-dependents --parallel 4 --lock-timeout 5s --statement-timeout 10m
              matview-refresh refresh --all --dry-run
            """);
        Selection.AddTo(command);
        foreach (var option in new Option[] { Full, Concurrent, Auto, Smart, Incremental, Days, IncludeDependents, Parallel, DryRun, LockTimeout, StatementTimeout, Json })
        {
            command.Add(option);
        }

        return command;
    }

    /// <summary>The mode the flags ask for; a usage error for two modes, or for a window-only mode.</summary>
    internal static RefreshMode ModeOf(CliContext context)
    {
        var chosen = new List<string>();
        foreach (var (option, name) in new[] { (Full, "--full"), (Concurrent, "--concurrent"), (Auto, "--auto"), (Smart, "--smart"), (Incremental, "--incremental") })
        {
            if (context.Get(option))
            {
                chosen.Add(name);
            }
        }

        if (chosen.Count > 1)
        {
            throw CliException.Usage($"{string.Join(" and ", chosen)} cannot be combined: choose one mode.");
        }

        if (chosen is ["--smart" or "--incremental"])
        {
            throw CliException.Usage(
                $"{chosen[0]} applies to window targets (mart tables kept by date window), which are defined in application code " +
                "(RefreshTarget.Window) and cannot be named here; materialized views refresh with --auto (default), --full or --concurrent.");
        }

        if (context.Get(Days) is { } days)
        {
            throw CliException.Usage($"--days {days} needs --incremental, which applies to window targets defined in application code, not to materialized views.");
        }

        return context.Get(Full) ? RefreshMode.Full : context.Get(Concurrent) ? RefreshMode.Concurrent : RefreshMode.Auto;
    }

    public static async Task<int> RunAsync(CliContext context)
    {
        var mode = ModeOf(context);
        if (Selection.IsEmpty(context))
        {
            throw CliException.Usage("Choose the views to refresh: --views v1 v2, --schema s or --all.");
        }

        Selection.Validate(context);

        var json = context.Get(Json);
        await using var connection = await context.ConnectAsync();
        var selection = await Selection.ResolveAsync(context, connection, context.Get(IncludeDependents));
        if (selection is null)
        {
            if (json)
            {
                context.WriteJson(new { Status = "success", Results = Array.Empty<object>() });
            }
            else
            {
                context.Console.WriteLine("No materialized views in this database.");
            }

            return ExitCodes.Ok;
        }

        var options = new RefreshOptions
        {
            Mode = mode,
            MaxParallelism = context.Get(Parallel),
            LockTimeout = context.Get(LockTimeout),
            StatementTimeout = context.Get(StatementTimeout),
            Trigger = "cli",
        };

        var progress = new RefreshProgress();
        await using var services = context.CreateServices(autoCreateSchema: true, more: s => s.AddSingleton<IRefreshExecutor>(sp =>
            new ProgressRefreshExecutor(ActivatorUtilities.CreateInstance<NpgsqlRefreshExecutor>(sp), progress)));
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();

        if (context.Get(DryRun))
        {
            var plan = await refresher.PlanAsync(selection, options, context.CancellationToken);
            PrintPlan(context, plan, json);
            return ExitCodes.Ok;
        }

        var batch = json
            ? await refresher.RefreshManyAsync(selection, options, context.CancellationToken)
            : await WithProgressAsync(context, progress, () => refresher.RefreshManyAsync(selection, options, context.CancellationToken));
        context.CancellationToken.ThrowIfCancellationRequested();
        if (batch.Error is { } error)
        {
            if (error.Exception is { } e && CliContext.IsConnectFailure(e))
            {
                throw new CliException(ExitCodes.CannotConnect, $"Cannot connect to {context.ServerDescription}: {CliContext.Describe(e)}", e);
            }

            throw new CliException(ExitCodes.StaleOrPartial, "The batch could not start: " + error);
        }

        if (json)
        {
            context.WriteJson(new
            {
                Status = batch.Status,
                DurationMs = Math.Round(batch.Duration.TotalMilliseconds, 1),
                Refreshed = batch.Results.Count(r => r.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Coalesced),
                Failed = batch.FailedViews.Count,
                Skipped = batch.SkippedViews.Count,
                Results = batch.Results.Select(r => new
                {
                    View = r.Target.ToString(),
                    r.Outcome,
                    Mode = r.ModeUsed,
                    r.ModeReason,
                    DurationMs = Math.Round(r.Duration.TotalMilliseconds, 1),
                    r.Attempts,
                    r.DataAsOf,
                    ErrorSqlstate = r.Error?.SqlState,
                    Error = r.Error?.Message,
                }),
            });
        }
        else
        {
            PrintResults(context, batch);
        }

        return batch.Status == RefreshBatchStatus.Success ? ExitCodes.Ok : ExitCodes.StaleOrPartial;
    }

    private static void PrintPlan(CliContext context, RefreshPlan plan, bool json)
    {
        if (json)
        {
            context.WriteJson(new
            {
                DryRun = true,
                Steps = plan.Steps.Select(s => new
                {
                    View = s.View.ToString(),
                    s.Level,
                    s.Mode,
                    Reason = s.ModeReason,
                    DependsOn = s.DependsOn.Select(d => d.ToString()),
                    s.IsDependent,
                }),
            });
            return;
        }

        var table = new Table().Border(TableBorder.Simple).Title("Plan (dry run: nothing refreshed)");
        table.Columns("#", "level", "view", "mode", "why", "after");
        var i = 0;
        foreach (var step in plan.Steps)
        {
            table.AddRow(
                new Text((++i).ToString(CultureInfo.InvariantCulture)),
                new Text(step.Level.ToString(CultureInfo.InvariantCulture)),
                new Text(step.View + (step.IsDependent ? " (dependent)" : string.Empty)),
                new Text(ModeName(step.Mode)),
                new Text(step.ModeReason),
                new Text(step.DependsOn.Count == 0 ? "-" : string.Join(", ", step.DependsOn)));
        }

        context.Console.Write(table);
        context.Console.WriteLine($"{plan.Steps.Count} view(s) would be refreshed in {plan.Steps.Select(s => s.Level).DefaultIfEmpty(-1).Max() + 1} level(s).");
    }

    internal static string ModeName(RefreshMode? mode) => mode switch
    {
        RefreshMode.Full => "full",
        RefreshMode.Concurrent => "concurrent",
        RefreshMode.Auto => "auto",
        _ => "-",
    };

    private static async Task<RefreshBatchResult> WithProgressAsync(CliContext context, RefreshProgress progress, Func<Task<RefreshBatchResult>> run)
    {
        if (context.Interactive)
        {
            RefreshBatchResult? result = null;
            var spinner = Spinner.Known.Dots;
            await context.Console.Live(new Text("starting…")).AutoClear(true).StartAsync(async live =>
            {
                var task = run();
                while (!task.IsCompleted)
                {
                    live.UpdateTarget(ProgressTable(progress, spinner));
                    await Task.WhenAny(task, Task.Delay(spinner.Interval, CancellationToken.None));
                }

                result = await task;
            });
            return result!;
        }

        var gate = new Lock();
        progress.Changed += view =>
        {
            lock (gate)
            {
                var line = view.State switch
                {
                    ViewState.Running => $"... {view.Name}: refreshing" + (view.Attempts > 1 ? $" (attempt {view.Attempts})" : string.Empty),
                    ViewState.Done => $"ok  {view.Name}: {ModeName(view.Mode)} in {Durations.Format(view.Elapsed)}",
                    _ => $"!!  {view.Name}: attempt {view.Attempts} failed after {Durations.Format(view.Elapsed)}: {view.Error}",
                };
                context.Out.WriteLine(line);
                context.Out.Flush();
            }
        };
        return await run();
    }

    private static Table ProgressTable(RefreshProgress progress, Spinner spinner)
    {
        var frame = spinner.Frames[(int)(Environment.TickCount64 / spinner.Interval.TotalMilliseconds % spinner.Frames.Count)];
        var table = new Table().Border(TableBorder.Rounded).Columns("", "view", "mode", "time");
        foreach (var view in progress.Views.Values.OrderBy(v => v.Name, StringComparer.Ordinal))
        {
            var (icon, time) = view.State switch
            {
                ViewState.Running => ($"[yellow]{frame}[/]", view.Stopwatch.Elapsed),
                ViewState.Done => ("[green]✓[/]", view.Elapsed),
                _ => ("[red]✗[/]", view.Elapsed),
            };
            table.AddRow(new Markup(icon), new Text(view.Name), new Text(view.State == ViewState.Running ? "…" : ModeName(view.Mode)), new Text(Durations.Format(time)));
        }

        return table;
    }

    private static void PrintResults(CliContext context, RefreshBatchResult batch)
    {
        var table = new Table().Border(TableBorder.Simple);
        table.Columns("view", "outcome", "mode", "time", "why / error");
        foreach (var r in batch.Results)
        {
            var outcome = r.Outcome switch
            {
                RefreshOutcome.Succeeded => "[green]refreshed[/]",
                RefreshOutcome.Coalesced => "[green]coalesced[/]",
                RefreshOutcome.Skipped => "[yellow]skipped[/]",
                _ => "[red]failed[/]",
            };
            table.AddRow(
                new Text(r.Target.ToString()),
                new Markup(outcome),
                new Text(ModeName(r.ModeUsed)),
                new Text(r.Outcome == RefreshOutcome.Skipped ? "-" : Durations.Format(r.Duration)),
                new Text(r.Error?.ToString() ?? r.ModeReason ?? string.Empty));
        }

        context.Console.Write(table);
        var refreshed = batch.Results.Count(r => r.Outcome is RefreshOutcome.Succeeded or RefreshOutcome.Coalesced);
        context.Console.WriteLine(
            $"{refreshed} refreshed, {batch.FailedViews.Count} failed, {batch.SkippedViews.Count} skipped in {Durations.Format(batch.Duration)}.");
    }
}
