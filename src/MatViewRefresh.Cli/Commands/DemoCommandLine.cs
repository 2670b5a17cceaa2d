using System.CommandLine;
using MatViewRefresh.Testing;
using Npgsql;
using Spectre.Console;

namespace MatViewRefresh.Cli.Commands;

/// <summary><c>matview-refresh demo</c>: a throwaway PostgreSQL with sample data and views, a refresh cycle, then list and history.</summary>
internal static class DemoCommandLine
{
    public static Command Command { get; } = new("demo", """
        Try it: starts a throwaway local PostgreSQL (from the installed server binaries, else a Docker container), creates
        sample data and materialized views, runs a refresh cycle with progress, then shows list and history. Everything is
        deleted when it ends. Ignores --connection.

        Example:
          matview-refresh demo
        """);

    internal const string SampleSql = """
        CREATE SCHEMA sales;
        CREATE TABLE sales.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, day date NOT NULL, customer text NOT NULL, amount numeric(12, 2) NOT NULL);
        INSERT INTO sales.orders (day, customer, amount)
        SELECT DATE '2026-01-01' + (i % 60), 'customer ' || (i % 25), (i % 97) + 0.5 FROM generate_series(1, 20000) i;
        CREATE MATERIALIZED VIEW sales.mv_daily_sales AS SELECT day, count(*) AS orders, sum(amount) AS total FROM sales.orders GROUP BY day;
        CREATE UNIQUE INDEX ON sales.mv_daily_sales (day);
        CREATE MATERIALIZED VIEW sales.mv_monthly_sales AS SELECT date_trunc('month', day)::date AS month, sum(orders) AS orders, sum(total) AS total FROM sales.mv_daily_sales GROUP BY 1;
        CREATE UNIQUE INDEX ON sales.mv_monthly_sales (month);
        CREATE MATERIALIZED VIEW sales.mv_top_customers AS SELECT customer, sum(amount) AS total FROM sales.orders GROUP BY customer ORDER BY total DESC;
        """;

    public static async Task<int> RunAsync(CliContext context)
    {
        var c = context.Console;
        c.MarkupLine("[bold]matview-refresh demo[/]: starting a throwaway PostgreSQL…");
        await using var server = await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions(), context.CancellationToken);
        var connectionString = await server.CreateDatabaseAsync(cancellationToken: context.CancellationToken);
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(context.CancellationToken);
            await using var command = new NpgsqlCommand(SampleSql, connection);
            await command.ExecuteNonQueryAsync(context.CancellationToken);
        }

        c.WriteLine("Created sales.orders (20,000 rows) and three materialized views: sales.mv_daily_sales, sales.mv_monthly_sales (reads mv_daily_sales), sales.mv_top_customers (no unique index).");
        var root = context.Parse.RootCommandResult.Command;
        async Task<int> Step(string title, params string[] args)
        {
            c.WriteLine();
            c.Write(new Rule($"$ matview-refresh {string.Join(' ', args)}") { Justification = Justify.Left });
            if (title.Length > 0)
            {
                c.WriteLine(title);
            }

            var parse = root.Parse([.. args, "--connection", connectionString]);
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null, Output = context.Out, Error = context.Error }, context.CancellationToken);
        }

        var worst = 0;
        worst = Math.Max(worst, await Step("The plan: dependency order, and the mode each view gets and why.", "refresh", "--all", "--dry-run"));
        worst = Math.Max(worst, await Step("A refresh cycle: independent views in parallel, dependents after their inputs.", "refresh", "--all", "--parallel", "2"));
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(context.CancellationToken);
            await using var command = new NpgsqlCommand("INSERT INTO sales.orders (day, customer, amount) SELECT DATE '2026-03-01', 'customer ' || i, 10 FROM generate_series(1, 100) i", connection);
            await command.ExecuteNonQueryAsync(context.CancellationToken);
        }

        worst = Math.Max(worst, await Step("New orders arrived: refresh mv_daily_sales and what depends on it.", "refresh", "--views", "sales.mv_daily_sales", "--include-dependents"));
        worst = Math.Max(worst, await Step(string.Empty, "list"));
        worst = Math.Max(worst, await Step(string.Empty, "history"));
        c.WriteLine();
        c.WriteLine("Done: the throwaway server is deleted. Point matview-refresh at your database with --connection or the PG* variables.");
        return worst;
    }
}
