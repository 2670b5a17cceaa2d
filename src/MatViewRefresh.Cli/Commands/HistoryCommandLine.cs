using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh history</c>: the latest runs and a summary with p50/p95/p99.</summary>
internal static class HistoryCommandLine
{
    private static readonly Option<string?> View = new("--view") { Description = "Only this view (named as in SQL).", HelpName = "view" };
    private static readonly Option<TimeSpan?> Since = new("--since") { Description = "Only runs started within this long (" + Durations.Help + ").", CustomParser = Durations.Parse, HelpName = "duration" };
    private static readonly Option<int?> Limit = new("--limit") { Description = "Runs to show (1 to 10000). Default 20.", CustomParser = Numbers.Between(1, 10_000), HelpName = "N" };
    private static readonly Option<bool> Json = GlobalOptions.Json();

    public static Command Command { get; } = Create();

    private static Command Create()
    {
        var command = new Command("history", """
            The latest refresh runs, newest first, and a summary of the runs selected: count, success rate, p50/p95/p99.

            Examples:
              matview-refresh history
              matview-refresh history --view sales.mv_daily --since 24h --limit 50
              matview-refresh history --since 7d --json | jq .summary.p95_ms
            """)
        {
            View, Since, Limit, Json,
        };
        return command;
    }

    public static async Task<int> RunAsync(CliContext context)
    {
        var target = context.Get(View) is { } view ? RefreshTarget.View(view) : null;
        DateTimeOffset? since = context.Get(Since) is { } s ? DateTimeOffset.UtcNow - s : null;
        var limit = context.Get(Limit) ?? 20;
        await using var connection = await context.ConnectAsync();
        IReadOnlyList<RefreshHistoryEntry> runs = [];
        RefreshSummary summary = new() { Count = 0, Successes = 0, Failures = 0 };
        if (await context.LogExistsAsync(connection))
        {
            await using var services = context.CreateServices(autoCreateSchema: false);
            var log = services.GetRequiredService<IRefreshLog>();
            runs = await log.GetHistoryAsync(limit, target, since, context.CancellationToken);
            summary = await log.GetSummaryAsync(target, since, context.CancellationToken);
        }

        if (target is not null && summary.Count == 0)
        {
            // No history for that name: a typo must not look like "never refreshed". An unknown view is exit 2 with close names.
            await using var services = context.CreateServices(autoCreateSchema: false);
            await services.GetRequiredService<IMaterializedViewRefresher>().PlanAsync(RefreshSelection.Views(target), null, context.CancellationToken);
        }

        static double? Ms(TimeSpan? t) => t is { } v ? Math.Round(v.TotalMilliseconds, 1) : null;
        if (context.Get(Json))
        {
            context.WriteJson(new
            {
                Runs = runs.Select(r => new
                {
                    r.Id,
                    View = r.Target,
                    r.Scope,
                    r.StartedAt,
                    DurationMs = Ms(r.Duration),
                    r.Success,
                    r.Mode,
                    r.Attempts,
                    r.Trigger,
                    ErrorSqlstate = r.ErrorSqlState,
                    Error = r.ErrorMessage,
                    r.DataAsOf,
                }),
                Summary = new
                {
                    summary.Count,
                    summary.Successes,
                    summary.Failures,
                    SuccessRate = summary.SuccessRate is { } rate ? Math.Round(rate, 2) : (double?)null,
                    AvgMs = Ms(summary.Average),
                    P50Ms = Ms(summary.P50),
                    P95Ms = Ms(summary.P95),
                    P99Ms = Ms(summary.P99),
                    MinMs = Ms(summary.Min),
                    MaxMs = Ms(summary.Max),
                },
            });
            return ExitCodes.Ok;
        }

        if (runs.Count == 0)
        {
            context.Console.WriteLine("No refresh runs recorded" + (target is null ? string.Empty : $" for {target}") + (since is null ? "." : " in that period."));
            return ExitCodes.Ok;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.Columns("started (UTC)", "view", "result", "mode", "time", "attempts", "trigger", "error");
        foreach (var r in runs)
        {
            table.AddRow(
                new Text(r.StartedAt.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)),
                new Text(r.Target + (r.Scope.Length == 0 ? string.Empty : $"({r.Scope})")),
                new Markup(r.Success ? "[green]ok[/]" : "[red]failed[/]"),
                new Text(r.Mode ?? "-"),
                new Text(Durations.Format(r.Duration)),
                new Text(r.Attempts.ToString(CultureInfo.InvariantCulture)),
                new Text(r.Trigger),
                new Text(r.ErrorMessage is null ? string.Empty : $"{r.ErrorSqlState}: {r.ErrorMessage}"));
        }

        context.Console.Write(table);
        context.Console.WriteLine(
            $"{summary.Count} run(s): {summary.Successes} ok, {summary.Failures} failed" +
            (summary.SuccessRate is { } sr ? $" ({sr:0.#}% success)" : string.Empty) +
            $"; p50 {Durations.Format(summary.P50)}, p95 {Durations.Format(summary.P95)}, p99 {Durations.Format(summary.P99)}, max {Durations.Format(summary.Max)}.");
        return ExitCodes.Ok;
    }
}
