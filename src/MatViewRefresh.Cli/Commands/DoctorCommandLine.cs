using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh doctor</c>: what stands in the way of refreshes, and what to do about it.</summary>
internal static class DoctorCommandLine
{
    /// <summary>Durable requests older than this are a warning: no worker seems to run them.</summary>
    private static readonly TimeSpan StuckRequests = TimeSpan.FromMinutes(10);

    private static readonly Option<TimeSpan> Retention = new("--retention")
    {
        Description = "The app's MatViewRefresh:HistoryRetention, to check that old history is pruned (" + Durations.Help + ").",
        CustomParser = r => Durations.Parse(r) ?? TimeSpan.Zero,
        DefaultValueFactory = _ => TimeSpan.FromDays(30),
        HelpName = "duration",
    };

    private static readonly Option<bool> Json = GlobalOptions.Json();

    public static Command Command { get; } = new("doctor", """
        Checks what stands in the way of refreshes: views that cannot refresh CONCURRENTLY and the unique index that would fix it,
        sessions blocking or blocked by a refresh (pg_blocking_pids, with pid, age and query), refreshes running now and for how long,
        views never refreshed, whether pg_cron is installed and its jobs, whether the log schema exists and is current,
        and the history's size and retention. Exit code 1 when it finds a problem (a blocked refresh or a session it blocks, an
        unpopulated view, a view whose last refresh failed, a missing or outdated log schema); warnings alone exit 0.

        Examples:
          matview-refresh doctor
          matview-refresh doctor --json | jq .blocked_sessions
        """)
    {
        Retention, Json,
    };

    public static async Task<int> RunAsync(CliContext context)
    {
        var ct = context.CancellationToken;
        var schema = context.LogSchemaName;
        await using var connection = await context.ConnectAsync();
        var views = await CatalogQueries.ViewsAsync(connection, ct);
        var fixes = new List<(CatalogView View, string? Index)>();
        foreach (var view in views.Where(v => !v.ConcurrentCapable))
        {
            fixes.Add((view, view.Populated ? await CatalogQueries.SuggestUniqueIndexAsync(connection, view, ct) : null));
        }

        var blocked = await CatalogQueries.BlockedSessionsAsync(connection, ct);
        var running = await CatalogQueries.RunningRefreshesAsync(connection, ct);
        var (logExists, missing) = await CatalogQueries.LogSchemaAsync(connection, schema, ct);
        var freshness = await ListCommandLine.FreshnessAsync(context, connection, views.Select(v => v.Name), missingLogIsFinding: true);
        var never = views.Where(v => !freshness.TryGetValue(v.Name, out var f) || f.RefreshedAt is null).ToList();
        var failed = views.Where(v => freshness.TryGetValue(v.Name, out var f) && f.LastError is not null).Select(v => (v.Name, freshness[v.Name])).ToList();
        var (cronInstalled, cronAvailable, cronPreloaded) = await CatalogQueries.PgCronAsync(connection, ct);
        IReadOnlyList<DatabaseSchedule> jobs = [];
        if (cronInstalled is not null)
        {
            await using var services = context.CreateServices(autoCreateSchema: false);
            jobs = await services.GetRequiredService<IDatabaseRefreshScheduler>().GetDatabaseSchedulesAsync(1, ct);
        }

        (long Rows, long Bytes, DateTimeOffset? Oldest)? history = logExists && !missing.Contains("table refresh_history")
            ? await CatalogQueries.HistorySizeAsync(connection, schema, ct)
            : null;
        // Change capture and durable requests: watched targets (with tables whose triggers are gone) and requests waiting.
        IReadOnlyList<RefreshWatch> watches = [];
        if (logExists && !missing.Contains("table watches"))
        {
            await using var services = context.CreateServices(autoCreateSchema: false);
            watches = await services.GetRequiredService<IRefreshWatcher>().ListAsync(ct);
        }

        var pending = logExists && !missing.Contains("table refresh_requests")
            ? await CatalogQueries.PendingRequestsAsync(connection, schema, ct)
            : [];
        var retention = context.Get(Retention);
        var pruneLate = history?.Oldest is { } oldest && DateTimeOffset.UtcNow - oldest > retention + TimeSpan.FromDays(1);

        var problems = new List<string>();
        var warnings = new List<string>();
        foreach (var b in blocked.Where(b => b.InvolvesRefresh))
        {
            problems.Add($"pid {b.Session.Pid} ({Short(b.Session.Query)}) is blocked by pid(s) {string.Join(", ", b.BlockedBy.Select(s => s.Pid))}");
        }

        foreach (var v in views.Where(v => !v.Populated))
        {
            problems.Add($"{v.Name} is not populated: reading it fails until it is refreshed without CONCURRENTLY");
        }

        foreach (var (name, f) in failed)
        {
            problems.Add($"{name}: last refresh failed: {f.LastError}");
        }

        var logState = !logExists ? "missing" : missing.Count > 0 ? "outdated" : "current";
        if (logState != "current")
        {
            problems.Add(logState == "missing"
                ? $"log schema {schema} does not exist: it is created by the first refresh (matview-refresh refresh …) or by running the package's sql/matview_refresh.sql"
                : $"log schema {schema} is outdated (missing {string.Join(", ", missing)}): the next refresh by this version updates it, or run sql/matview_refresh.sql");
        }

        foreach (var (view, index) in fixes.Where(f => f.View.Populated))
        {
            warnings.Add($"{view.Name} cannot refresh CONCURRENTLY ({view.NotConcurrentBecause}): " + (index ?? $"add a unique index on the columns that identify a row of {view.Name}"));
        }

        foreach (var v in never.Where(v => v.Populated))
        {
            warnings.Add($"{v.Name} was never refreshed by MatViewRefresh");
        }

        foreach (var w in watches)
        {
            foreach (var t in w.Tables.Where(t => !t.TriggersInstalled))
            {
                problems.Add($"{w.Target} is watched on {t.Table}, but that table has no capture triggers (re-created?): watch it again");
            }
        }

        foreach (var (target, requests, age) in pending.Where(p => p.OldestAge > StuckRequests))
        {
            warnings.Add($"{requests} durable request(s) for {target} have waited {Durations.Format(age)}: is a worker running (MatViewRefresh:Durable:Enabled) that can resolve this target?");
        }

        if (pruneLate)
        {
            warnings.Add($"history holds runs older than the retention ({Durations.Format(retention)}): pruning runs after successful refreshes, at most hourly");
        }

        if (context.Get(Json))
        {
            context.WriteJson(new
            {
                Ok = problems.Count == 0,
                Problems = problems,
                Warnings = warnings,
                NotConcurrent = fixes.Select(f => new { View = f.View.Name.ToString(), Reason = f.View.NotConcurrentBecause, SuggestedIndex = f.Index }),
                BlockedSessions = blocked.Select(b => new { Blocked = Session(b.Session), BlockedBy = b.BlockedBy.Select(Session), b.InvolvesRefresh }),
                RunningRefreshes = running.Select(r => new { Session = Session(r.Session), Views = r.Views.Select(v => v.ToString()), r.WaitingForLock }),
                NeverRefreshed = never.Select(v => v.Name.ToString()),
                PgCron = new { Installed = cronInstalled is not null, Version = cronInstalled, Available = cronAvailable is not null, Preloaded = cronPreloaded, Jobs = jobs.Select(j => new { j.Name, j.JobId, j.Cron, j.Active, LastRun = j.LastRuns.FirstOrDefault() }) },
                LogSchema = new { Name = schema, Exists = logExists, State = logState, Missing = missing },
                Watches = watches.Select(w => new { w.Target, Tables = w.Tables.Select(t => new { Table = t.Table.ToString(), t.DayColumn, t.TimeZone, t.TriggersInstalled }) }),
                PendingRequests = pending.Select(p => new { p.Target, p.Requests, OldestAgeSeconds = p.OldestAge.TotalSeconds }),
                History = history is { } h ? new { h.Rows, h.Bytes, Oldest = h.Oldest, RetentionDays = retention.TotalDays, PruneLate = pruneLate } : null,
            });
            return problems.Count == 0 ? ExitCodes.Ok : ExitCodes.StaleOrPartial;
        }

        var c = context.Console;
        c.Write(new Rule("Concurrent refresh") { Justification = Justify.Left });
        if (fixes.Count == 0)
        {
            c.WriteLine($"All {views.Count} view(s) can refresh CONCURRENTLY.");
        }
        else
        {
            var t = new Table().Border(TableBorder.Simple).Columns("view", "why not", "fix");
            foreach (var (view, index) in fixes)
            {
                t.AddRow(new Text(view.Name.ToString()), new Text(view.NotConcurrentBecause ?? string.Empty),
                    new Text(!view.Populated ? $"matview-refresh refresh --views {view.Name} --full" : index ?? "add a unique index on the columns that identify a row"));
            }

            c.Write(t);
        }

        c.Write(new Rule("Blocked sessions (pg_blocking_pids)") { Justification = Justify.Left });
        if (blocked.Count == 0)
        {
            c.WriteLine("No session is waiting for a lock.");
        }
        else
        {
            var t = new Table().Border(TableBorder.Simple).Columns("blocked pid", "waiting", "query", "blocked by pid", "state", "xact age", "query");
            foreach (var b in blocked)
            {
                foreach (var by in b.BlockedBy)
                {
                    t.AddRow(
                        new Text(b.Session.Pid.ToString(CultureInfo.InvariantCulture) + (b.InvolvesRefresh ? " (refresh)" : string.Empty)),
                        new Text(Age(b.Session.QueryAgeSeconds)),
                        new Text(Short(b.Session.Query)),
                        new Text(by.Pid.ToString(CultureInfo.InvariantCulture)),
                        new Text(by.State ?? "-"),
                        new Text(Age(by.TransactionAgeSeconds)),
                        new Text(Short(by.Query)));
                }
            }

            c.Write(t);
        }

        c.Write(new Rule("Refreshes running now") { Justification = Justify.Left });
        if (running.Count == 0)
        {
            c.WriteLine("None.");
        }
        else
        {
            var t = new Table().Border(TableBorder.Simple).Columns("pid", "view", "running for", "state", "query");
            foreach (var r in running)
            {
                t.AddRow(
                    new Text(r.Session.Pid.ToString(CultureInfo.InvariantCulture)),
                    new Text(r.Views.Count == 0 ? "?" : string.Join(", ", r.Views)),
                    new Text(Age(r.Session.QueryAgeSeconds)),
                    new Text(r.WaitingForLock ? "waiting for a lock" : r.Session.State ?? "-"),
                    new Text(Short(r.Session.Query)));
            }

            c.Write(t);
        }

        c.Write(new Rule("Never refreshed") { Justification = Justify.Left });
        c.WriteLine(never.Count == 0 ? "Every view has a successful refresh in the log." : string.Join(", ", never.Select(v => v.Name.ToString())));

        c.Write(new Rule("pg_cron") { Justification = Justify.Left });
        c.WriteLine(cronInstalled is not null
            ? $"Installed (version {cronInstalled}); {jobs.Count} matview_refresh job(s)" + (jobs.Count == 0 ? "." : ": " + string.Join("; ", jobs.Select(j => $"{j.Name} '{j.Cron}'{(j.Active ? string.Empty : " (inactive)")}{(j.LastRuns.FirstOrDefault() is { } run ? $", last run {run.Status}" : string.Empty)}")))
            : cronAvailable is not null
                ? $"Not installed in this database; version {cronAvailable} is available" + (cronPreloaded ? ": CREATE EXTENSION pg_cron;" : ": add pg_cron to shared_preload_libraries, restart, then CREATE EXTENSION pg_cron;")
                : "Not available on this server (schedule refreshes from cron with 'matview-refresh refresh', or in the app with IRefreshScheduler).");

        c.Write(new Rule("Change capture and durable requests") { Justification = Justify.Left });
        c.WriteLine(watches.Count == 0
            ? "No watched targets."
            : $"{watches.Count} watched target(s): " + string.Join("; ", watches.Select(w => $"{w.Target} on " + string.Join(", ", w.Tables.Select(t => t.Table + (t.DayColumn is null ? string.Empty : $" (days of {t.DayColumn})") + (t.TriggersInstalled ? string.Empty : " [triggers missing]"))))) + ".");
        c.WriteLine(pending.Count == 0
            ? "No durable requests waiting."
            : $"Requests waiting: " + string.Join("; ", pending.Select(p => $"{p.Target} {p.Requests} (oldest {Durations.Format(p.OldestAge)})")) + ".");

        c.Write(new Rule("Refresh log") { Justification = Justify.Left });
        c.WriteLine($"Schema {schema}: {logState}" + (missing.Count > 0 && logExists ? $" (missing {string.Join(", ", missing)})" : "") + ".");
        if (history is { } hs)
        {
            c.WriteLine($"History: {hs.Rows.ToString("N0", CultureInfo.InvariantCulture)} run(s), {Durations.Size(hs.Bytes)}, oldest {(hs.Oldest is { } o ? Durations.Format(DateTimeOffset.UtcNow - o) + " ago" : "-")}; retention {Durations.Format(retention)}{(pruneLate ? " (older rows remain: pruning is late)" : string.Empty)}.");
        }

        c.Write(new Rule("Summary") { Justification = Justify.Left });
        foreach (var p in problems)
        {
            c.MarkupLine("[red]problem:[/] " + Markup.Escape(p));
        }

        foreach (var w in warnings)
        {
            c.MarkupLine("[yellow]warning:[/] " + Markup.Escape(w));
        }

        c.WriteLine(problems.Count == 0 ? $"No problems ({warnings.Count} warning(s))." : $"{problems.Count} problem(s), {warnings.Count} warning(s).");
        return problems.Count == 0 ? ExitCodes.Ok : ExitCodes.StaleOrPartial;
    }

    private static object Session(SessionInfo s) => new
    {
        s.Pid,
        s.User,
        s.Application,
        s.State,
        s.WaitEvent,
        QueryAgeSeconds = s.QueryAgeSeconds is { } q ? Math.Round(q, 1) : (double?)null,
        TransactionAgeSeconds = s.TransactionAgeSeconds is { } x ? Math.Round(x, 1) : (double?)null,
        s.Query,
        s.IsRefresh,
    };

    private static string Age(double? seconds) => seconds is { } s ? Durations.Format(TimeSpan.FromSeconds(s)) : "-";

    private static string Short(string query)
    {
        var one = string.Join(' ', query.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return one.Length <= 80 ? one : one[..77] + "...";
    }
}
