using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh status</c> (alias <c>freshness</c>): exit code 1 when a selected view is stale or its last refresh failed.</summary>
internal static class StatusCommandLine
{
    private static readonly SelectionOptions Selection = new();
    private static readonly Option<TimeSpan?> MaxAge = new("--max-age")
    {
        Description = "A view whose data is older than this is stale (" + Durations.Help + "). Without it, only failed and never-refreshed views are.",
        CustomParser = Durations.Parse,
        HelpName = "duration",
    };

    private static readonly Option<bool> Json = GlobalOptions.Json();

    public static Command Command { get; } = Create();

    private static Command Create()
    {
        var command = new Command("status", """
            How fresh each materialized view is, from the refresh log. Exit code 1 when any selected view is stale
            (data older than --max-age), was never refreshed by MatViewRefresh, or its last refresh failed: for cron and alert scripts.
            Default selection: every materialized view.

            Examples:
              matview-refresh status
              matview-refresh freshness --max-age 5m --views mv_daily_sales || notify-oncall
              matview-refresh status --schema sales --json
            """);
        command.Aliases.Add("freshness");
        Selection.AddTo(command);
        command.Add(MaxAge);
        command.Add(Json);
        return command;
    }

    public static async Task<int> RunAsync(CliContext context)
    {
        var maxAge = context.Get(MaxAge);
        Selection.Validate(context);
        await using var connection = await context.ConnectAsync();
        var all = await CatalogQueries.ViewsAsync(connection, context.CancellationToken);
        IReadOnlyList<QualifiedName> names;
        if (Selection.IsEmpty(context))
        {
            names = [.. all.Select(v => v.Name)];
        }
        else
        {
            var selection = await Selection.ResolveAsync(context, connection, includeDependents: false);
            if (selection is null)
            {
                names = [];
            }
            else
            {
                // Resolve through the library's planner: unknown views and schemas fail as they do for a refresh.
                await using var services = context.CreateServices(autoCreateSchema: false);
                var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
                names = [.. (await refresher.PlanAsync(selection, null, context.CancellationToken)).Views.Order()];
            }
        }

        var freshness = await ListCommandLine.FreshnessAsync(context, connection, names);
        var rows = names.Select(n =>
        {
            freshness.TryGetValue(n, out var f);
            var status = f is null ? "never"
                : f.LastError is not null ? "failed"
                : f.RefreshedAt is null ? "never"
                : maxAge is { } max && f.IsStale(max) ? "stale"
                : "ok";
            return (Name: n, Freshness: f, Status: status);
        }).ToList();
        var bad = rows.Count(r => r.Status != "ok");

        if (context.Get(Json))
        {
            context.WriteJson(new
            {
                MaxAgeSeconds = maxAge?.TotalSeconds,
                Ok = bad == 0,
                Stale = bad,
                Views = rows.Select(r => new
                {
                    View = r.Name.ToString(),
                    r.Status,
                    RefreshedAt = r.Freshness?.RefreshedAt,
                    DataAsOf = r.Freshness?.DataAsOf,
                    AgeSeconds = r.Freshness?.Age is { } age ? Math.Round(age.TotalSeconds, 1) : (double?)null,
                    DurationMs = r.Freshness?.Duration is { } d ? Math.Round(d.TotalMilliseconds, 1) : (double?)null,
                    Mode = r.Freshness?.Mode,
                    LastAttemptAt = r.Freshness?.LastAttemptAt,
                    LastError = r.Freshness?.LastError,
                    LastErrorSqlstate = r.Freshness?.LastErrorSqlState,
                }),
            });
        }
        else
        {
            var table = new Table().Border(TableBorder.Simple);
            table.Columns("view", "status", "data age", "refreshed at", "took", "mode", "last error");
            foreach (var (name, f, status) in rows)
            {
                var colour = status == "ok" ? "green" : status == "stale" ? "yellow" : "red";
                table.AddRow(
                    new Text(name.ToString()),
                    new Markup($"[{colour}]{status}[/]"),
                    new Text(Durations.Format(f?.Age)),
                    new Text(f?.RefreshedAt?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-"),
                    new Text(Durations.Format(f?.Duration)),
                    new Text(f?.Mode ?? "-"),
                    new Text(f?.LastError ?? string.Empty));
            }

            context.Console.Write(table);
            context.Console.WriteLine(bad == 0
                ? $"All {rows.Count} view(s) fresh{(maxAge is { } m ? $" (max age {Durations.Format(m)})" : string.Empty)}."
                : $"{bad} of {rows.Count} view(s) stale, failed or never refreshed{(maxAge is { } m2 ? $" (max age {Durations.Format(m2)})" : string.Empty)}.");
        }

        return bad == 0 ? ExitCodes.Ok : ExitCodes.StaleOrPartial;
    }
}
