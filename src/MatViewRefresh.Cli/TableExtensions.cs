using Spectre.Console;

namespace MatViewRefresh.Cli;

internal static class TableExtensions
{
    /// <summary>Adds columns; names (views, pids) never wrap, so that they stay copyable on a narrow terminal.</summary>
    public static Table Columns(this Table table, params string[] names)
    {
        foreach (var name in names)
        {
            var column = new TableColumn(name);
            if (name is "view" or "name" or "blocked pid" or "blocked by pid" or "pid" or "started (UTC)")
            {
                column.NoWrap();
            }

            table.AddColumn(column);
        }

        return table;
    }
}
