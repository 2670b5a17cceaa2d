using System.CommandLine;
using Npgsql;

namespace MatViewRefresh.Cli.Commands;

/// <summary>--views / --schema / --all, shared by refresh, status and schedule add.</summary>
internal sealed class SelectionOptions
{
    public Option<string[]> Views { get; } = new("--views", "--view")
    {
        Description = "Materialized views, named as in SQL (mv_daily, sales.mv_daily, '\"Sales\".\"Daily\"'); unqualified names are in public.",
        AllowMultipleArgumentsPerToken = true,
        HelpName = "view",
    };

    public Option<string[]> Schemas { get; } = new("--schema")
    {
        Description = "Every materialized view of these schemas.",
        AllowMultipleArgumentsPerToken = true,
        HelpName = "schema",
    };

    public Option<bool> All { get; } = new("--all") { Description = "Every materialized view of the database." };

    public void AddTo(Command command)
    {
        command.Add(Views);
        command.Add(Schemas);
        command.Add(All);
    }

    public bool IsEmpty(CliContext context) =>
        (context.Get(Views) ?? []).Length == 0 && (context.Get(Schemas) ?? []).Length == 0 && !context.Get(All);

    /// <summary>Checks the names before anything connects: a bad name or combination is a usage error naming it.</summary>
    public void Validate(CliContext context)
    {
        var views = context.Get(Views) ?? [];
        var schemas = context.Get(Schemas) ?? [];
        if ((views.Length > 0 ? 1 : 0) + (schemas.Length > 0 ? 1 : 0) + (context.Get(All) ? 1 : 0) > 1)
        {
            throw CliException.Usage("--views, --schema and --all cannot be combined: choose one.");
        }

        foreach (var view in views)
        {
            QualifiedName.Parse(view); // throws with the reason, naming the value
        }

        foreach (var schema in schemas)
        {
            RefreshSelection.Schemas(schema);
        }
    }

    /// <summary>The selection named on the command line.</summary>
    public async Task<RefreshSelection?> ResolveAsync(CliContext context, NpgsqlConnection connection, bool includeDependents)
    {
        Validate(context);
        var views = context.Get(Views) ?? [];
        var schemas = context.Get(Schemas) ?? [];

        RefreshSelection selection;
        if (views.Length > 0)
        {
            selection = RefreshSelection.Views(views);
        }
        else if (schemas.Length > 0)
        {
            selection = RefreshSelection.Schemas(schemas);
        }
        else
        {
            var names = await CatalogQueries.SchemasWithViewsAsync(connection, context.CancellationToken);
            if (names.Count == 0)
            {
                return null;
            }

            selection = RefreshSelection.Schemas(names.Select(n => SqlIdentifier.Quote(n)));
        }

        return includeDependents ? selection.WithDependents() : selection;
    }
}
