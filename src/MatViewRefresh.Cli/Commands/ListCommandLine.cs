using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh list</c>: every materialized view with its size, rows, refresh capabilities, inputs and freshness.</summary>
internal static class ListCommandLine
{
    private static readonly Option<bool> Json = GlobalOptions.Json();

    public static Command Command { get; } = new("list", """
        Every materialized view: size, estimated rows, populated, whether it can refresh CONCURRENTLY (and why not),
        what it depends on, its last refresh and the age of its data (from the refresh log).

        Examples:
          matview-refresh list
          matview-refresh list --json | jq '.views[] | select(.concurrent_capable | not) | .view'
        """)
    {
        Json,
    };

    /// <summary>Freshness of every view from the refresh log (none when the log does not exist yet).</summary>
    /// <remarks>A --log-schema without a log is exit 2, unless <paramref name="missingLogIsFinding"/> (doctor reports it).</remarks>
    internal static async Task<Dictionary<QualifiedName, ViewFreshness>> FreshnessAsync(
        CliContext context, NpgsqlConnection connection, IEnumerable<QualifiedName> views, bool missingLogIsFinding = false)
    {
        var result = new Dictionary<QualifiedName, ViewFreshness>();
        if (missingLogIsFinding
                ? !await CatalogQueries.LogExistsAsync(connection, context.LogSchemaName, context.CancellationToken)
                : !await context.LogExistsAsync(connection))
        {
            return result;
        }

        await using var services = context.CreateServices(autoCreateSchema: false);
        var log = services.GetRequiredService<IRefreshLog>();
        foreach (var view in views)
        {
            if (await log.GetFreshnessAsync(RefreshTarget.View(view), context.CancellationToken) is { } freshness)
            {
                result[view] = freshness;
            }
        }

        return result;
    }

    public static async Task<int> RunAsync(CliContext context)
    {
        await using var connection = await context.ConnectAsync();
        var views = await CatalogQueries.ViewsAsync(connection, context.CancellationToken);
        var freshness = await FreshnessAsync(context, connection, views.Select(v => v.Name));
        if (context.Get(Json))
        {
            context.WriteJson(new
            {
                Views = views.Select(v =>
                {
                    freshness.TryGetValue(v.Name, out var f);
                    return new
                    {
                        View = v.Name.ToString(),
                        v.Name.Schema,
                        v.Name.Name,
                        v.SizeBytes,
                        v.EstimatedRows,
                        v.Populated,
                        v.ConcurrentCapable,
                        v.NotConcurrentBecause,
                        DependsOn = v.DependsOn.Select(d => d.ToString()),
                        LastRefreshedAt = f?.RefreshedAt,
                        DataAsOf = f?.DataAsOf,
                        DataAgeSeconds = f?.Age is { } age ? Math.Round(age.TotalSeconds, 1) : (double?)null,
                        LastMode = f?.Mode,
                        LastDurationMs = f?.Duration is { } d ? Math.Round(d.TotalMilliseconds, 1) : (double?)null,
                        LastError = f?.LastError,
                    };
                }),
            });
            return ExitCodes.Ok;
        }

        if (views.Count == 0)
        {
            context.Console.WriteLine("No materialized views in this database.");
            return ExitCodes.Ok;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.Columns("view", "size", "est. rows", "populated", "concurrently", "depends on", "last refresh", "data age");
        foreach (var v in views)
        {
            freshness.TryGetValue(v.Name, out var f);
            table.AddRow(
                new Text(v.Name.ToString()),
                new Text(v.SizeBytes is { } size ? Durations.Size(size) : "? (locked)"),
                new Text(v.EstimatedRows?.ToString("N0", CultureInfo.InvariantCulture) ?? "?"),
                new Text(v.Populated ? "yes" : "no"),
                new Text(v.ConcurrentCapable ? "yes" : "no: " + v.NotConcurrentBecause),
                new Text(v.DependsOn.Count == 0 ? "-" : string.Join(", ", v.DependsOn)),
                new Text(f is null ? "never" : f.RefreshedAt is { } at ? at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) + (f.LastError is null ? string.Empty : " (last attempt failed)") : "failed: " + f.LastError),
                new Text(Durations.Format(f?.Age)));
        }

        context.Console.Write(table);
        context.Console.WriteLine($"{views.Count} materialized view(s).");
        return ExitCodes.Ok;
    }
}
