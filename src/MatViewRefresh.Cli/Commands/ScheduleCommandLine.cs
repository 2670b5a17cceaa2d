using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh schedule add|list|remove</c>: refreshes run by the database itself, as pg_cron jobs.</summary>
internal static class ScheduleCommandLine
{
    private static readonly Argument<string> AddName = new("name") { Description = "The schedule's name (letters, digits, _ - .); the pg_cron job is matview_refresh:<name>." };
    private static readonly Argument<string> RemoveName = new("name") { Description = "The schedule's name." };
    private static readonly Option<string> Cron = new("--cron") { Description = "A pg_cron schedule: '*/5 * * * *', '0 3 * * *', '@daily'.", Required = true, HelpName = "expression" };
    private static readonly Option<string?> TimeZone = new("--time-zone") { Description = "The IANA zone the schedule is meant in; refused unless it is pg_cron's zone.", HelpName = "zone" };
    private static readonly Option<bool> Full = new("--full") { Description = "Full refreshes." };
    private static readonly Option<bool> Concurrent = new("--concurrent") { Description = "CONCURRENTLY refreshes." };
    private static readonly Option<bool> Auto = new("--auto") { Description = "CONCURRENTLY where possible, else full (the default)." };
    private static readonly Option<bool> AddJson = GlobalOptions.Json();
    private static readonly Option<bool> ListJson = GlobalOptions.Json();
    private static readonly SelectionOptions Selection = new();

    public static Command Build(Action<Command, Func<CliContext, Task<int>>> bind)
    {
        var schedule = new Command("schedule", """
            Refreshes run by the database itself: pg_cron jobs that CALL matview_refresh.refresh(…), with the same lock, log and history.
            Needs pg_cron installed in the database (matview-refresh doctor says whether it is).

            Examples:
              matview-refresh schedule add nightly --cron "0 3 * * *" --all
              matview-refresh schedule add sales-5min --cron "*/5 * * * *" --schema sales --concurrent
              matview-refresh schedule list
              matview-refresh schedule remove nightly
            """);

        var add = new Command("add", """
            Create or update the pg_cron job matview_refresh:<name> for the selected views. The selection is resolved now, in
            dependency order: views created later are refreshed once you schedule again. The schedule is in pg_cron's zone.

            Examples:
              matview-refresh schedule add nightly --cron "0 3 * * *" --all
              matview-refresh schedule add sales-5min --cron "*/5 * * * *" --schema sales --concurrent
            """)
        {
            AddName, Cron, TimeZone, Full, Concurrent, Auto, AddJson,
        };
        Selection.AddTo(add);
        bind(add, RunAddAsync);

        var list = new Command("list", """
            The matview_refresh pg_cron jobs and their last runs.

            Examples:
              matview-refresh schedule list
              matview-refresh schedule list --json
            """) { ListJson };
        bind(list, RunListAsync);

        var remove = new Command("remove", """
            Remove the pg_cron job matview_refresh:<name>. Exit code 1 when there is none.

            Example:
              matview-refresh schedule remove nightly
            """) { RemoveName };
        bind(remove, RunRemoveAsync);

        schedule.Add(add);
        schedule.Add(list);
        schedule.Add(remove);
        return schedule;
    }

    private static async Task<int> RunAddAsync(CliContext context)
    {
        var modes = new[] { (Full, RefreshMode.Full), (Concurrent, RefreshMode.Concurrent), (Auto, RefreshMode.Auto) }.Where(m => context.Get(m.Item1)).ToList();
        if (modes.Count > 1)
        {
            throw CliException.Usage($"{string.Join(" and ", modes.Select(m => "--" + RefreshCommandLine.ModeName(m.Item2)))} cannot be combined: choose one mode.");
        }

        if (Selection.IsEmpty(context))
        {
            throw CliException.Usage("Choose the views to schedule: --views v1 v2, --schema s or --all.");
        }

        Selection.Validate(context);

        await using var connection = await context.ConnectAsync();
        var selection = await Selection.ResolveAsync(context, connection, includeDependents: false)
            ?? throw CliException.Usage("There are no materialized views to schedule in this database.");
        await using var services = context.CreateServices(autoCreateSchema: true);
        var scheduler = services.GetRequiredService<IDatabaseRefreshScheduler>();
        var job = await scheduler.ScheduleInDatabaseAsync(
            context.Get(AddName)!, context.Get(Cron)!, selection, modes.Count == 1 ? modes[0].Item2 : RefreshMode.Auto, context.Get(TimeZone), context.CancellationToken);
        if (context.Get(AddJson))
        {
            context.WriteJson(Job(job));
        }
        else
        {
            context.Console.WriteLine($"Scheduled {job.Name} (pg_cron job {job.JobId}, '{job.Cron}', database {job.Database}).");
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> RunListAsync(CliContext context)
    {
        await using var connection = await context.ConnectAsync();
        await using var services = context.CreateServices(autoCreateSchema: false);
        var jobs = await services.GetRequiredService<IDatabaseRefreshScheduler>().GetDatabaseSchedulesAsync(5, context.CancellationToken);
        if (context.Get(ListJson))
        {
            context.WriteJson(new { Schedules = jobs.Select(Job) });
            return ExitCodes.Ok;
        }

        if (jobs.Count == 0)
        {
            context.Console.WriteLine("No matview_refresh pg_cron jobs.");
            return ExitCodes.Ok;
        }

        var table = new Table().Border(TableBorder.Simple).Columns("name", "job id", "cron", "active", "last run", "command");
        foreach (var job in jobs)
        {
            var last = job.LastRuns.FirstOrDefault();
            table.AddRow(
                new Text(job.Name),
                new Text(job.JobId.ToString(CultureInfo.InvariantCulture)),
                new Text(job.Cron),
                new Text(job.Active ? "yes" : "no"),
                new Text(last is null ? "never" : $"{last.Status} {last.StartedAt?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}"),
                new Text(job.Command));
        }

        context.Console.Write(table);
        return ExitCodes.Ok;
    }

    private static async Task<int> RunRemoveAsync(CliContext context)
    {
        var name = context.Get(RemoveName)!;
        await using var connection = await context.ConnectAsync();
        await using var services = context.CreateServices(autoCreateSchema: false);
        var removed = await services.GetRequiredService<IDatabaseRefreshScheduler>().UnscheduleInDatabaseAsync(name, context.CancellationToken);
        context.Console.WriteLine(removed ? $"Removed schedule {name}." : $"No schedule named {name}.");
        return removed ? ExitCodes.Ok : ExitCodes.StaleOrPartial;
    }

    private static object Job(DatabaseSchedule job) => new
    {
        job.Name,
        job.JobName,
        job.JobId,
        job.Cron,
        job.Command,
        job.Database,
        job.Active,
        LastRuns = job.LastRuns.Select(r => new { r.RunId, r.Status, r.StartedAt, r.FinishedAt, r.Message }),
    };
}
