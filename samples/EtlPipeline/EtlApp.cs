using System.Diagnostics;
using System.Globalization;
using MatViewRefresh;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace EtlPipeline;

/// <summary>How the refresh step runs, from the command line.</summary>
public sealed record EtlArguments
{
    public WindowStrategy Strategy { get; init; } = WindowStrategy.Smart;

    public int? Days { get; init; }

    public IReadOnlyList<string> Views { get; init; } = [];

    public bool SkipRefresh { get; init; }

    public string? Connection { get; init; }

    public bool Help { get; init; }
}

/// <summary>
/// The ETL of seed 001: creates schema <c>etl</c> (orders over the last year, two window marts, two materialized views),
/// ingests today's orders in one transaction, then refreshes the marts (window targets) and the views.
/// </summary>
public static class EtlApp
{
    public const int ExitOk = 0;
    public const int ExitRefreshFailed = 1;
    public const int ExitUsage = 2;

    public const string Usage = """
        Usage: EtlPipeline [--smart | --full | --incremental] [--days N] [--views NAME ...] [--skip-refresh] [--connection CS]
          --smart          marts: full when no full refresh in the last day, else incremental; views: auto (default)
          --full           marts: delete and recompute every row; views: full refresh
          --incremental    marts: recompute the last N days (default 2); views: auto
          --days N         days an incremental refresh replaces, today included (1-36600)
          --views A B      refresh only these (names of marts or views, with or without "etl.")
          --skip-refresh   ingest only
          --connection CS  PostgreSQL connection string (else ConnectionStrings__Default, MATVIEWREFRESH_CONNECTION,
                           else a throwaway local PostgreSQL)
        """;

    /// <summary>The window marts: table, date column and the SELECT recomputing a window of days.</summary>
    public static IReadOnlyList<(string Name, RefreshTarget Target)> Marts { get; } =
    [
        ("etl.daily_sales", RefreshTarget.Window("etl.daily_sales", "day", """
            SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders, sum(amount) AS revenue
            FROM etl.orders
            WHERE ordered_at >= (@from::timestamp AT TIME ZONE 'UTC') AND ordered_at < (@to::timestamp AT TIME ZONE 'UTC')
            GROUP BY 1
            """)),
        ("etl.daily_region_sales", RefreshTarget.Window("etl.daily_region_sales", "day", """
            SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, region, count(*) AS orders, sum(amount) AS revenue
            FROM etl.orders
            WHERE ordered_at >= (@from::timestamp AT TIME ZONE 'UTC') AND ordered_at < (@to::timestamp AT TIME ZONE 'UTC')
            GROUP BY 1, 2
            """)),
    ];

    /// <summary>The materialized views.</summary>
    public static IReadOnlyList<string> Views { get; } = ["etl.mv_top_customers", "etl.mv_monthly_sales"];

    public static IEnumerable<string> KnownNames => Marts.Select(m => m.Name).Concat(Views);

    /// <summary>Orders generated once, over the last 365 days (before today).</summary>
    public const int GeneratedOrders = 300_000;

    /// <summary>Orders ingested per run, today.</summary>
    public const int IngestedOrders = 1_000;

    public static string SchemaSql { get; } = string.Create(CultureInfo.InvariantCulture, $"""
        CREATE SCHEMA IF NOT EXISTS etl;
        CREATE TABLE IF NOT EXISTS etl.orders (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            customer text NOT NULL, product text NOT NULL, region text NOT NULL,
            amount numeric(12, 2) NOT NULL, ordered_at timestamptz NOT NULL);
        CREATE INDEX IF NOT EXISTS orders_ordered_at ON etl.orders (ordered_at);
        INSERT INTO etl.orders (customer, product, region, amount, ordered_at)
            SELECT 'customer-' || (g % 50), 'product-' || (g % 12), (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4],
                   ((g * 7) % 200) + 5.25,
                   date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '365 days' + (g % 365) * interval '1 day' + ((g * 37) % 86400) * interval '1 second'
            FROM generate_series(1, {GeneratedOrders}) g
            WHERE NOT EXISTS (SELECT 1 FROM etl.orders);
        CREATE TABLE IF NOT EXISTS etl.daily_sales (day date PRIMARY KEY, orders bigint NOT NULL, revenue numeric NOT NULL);
        CREATE TABLE IF NOT EXISTS etl.daily_region_sales (
            day date NOT NULL, region text NOT NULL, orders bigint NOT NULL, revenue numeric NOT NULL, PRIMARY KEY (day, region));
        CREATE MATERIALIZED VIEW IF NOT EXISTS etl.mv_top_customers AS
            SELECT customer, count(*) AS orders, sum(amount) AS spent FROM etl.orders GROUP BY customer WITH NO DATA;
        CREATE UNIQUE INDEX IF NOT EXISTS mv_top_customers_customer ON etl.mv_top_customers (customer);
        CREATE MATERIALIZED VIEW IF NOT EXISTS etl.mv_monthly_sales AS
            SELECT date_trunc('month', ordered_at AT TIME ZONE 'UTC')::date AS month, count(*) AS orders, sum(amount) AS revenue
            FROM etl.orders GROUP BY 1 WITH NO DATA;
        CREATE UNIQUE INDEX IF NOT EXISTS mv_monthly_sales_month ON etl.mv_monthly_sales (month);
        """);

    /// <summary>Today's orders (UTC day), spread over the hours of the day so far.</summary>
    public static string IngestSql { get; } = string.Create(CultureInfo.InvariantCulture, $"""
        INSERT INTO etl.orders (customer, product, region, amount, ordered_at)
        SELECT 'customer-' || (g % 50), 'product-' || (g % 12), (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4],
               ((g * 11) % 150) + 9.99,
               date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                 + (g::double precision / {IngestedOrders}) * (now() - (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'))
        FROM generate_series(1, {IngestedOrders}) g
        """);

    /// <summary>Parses the arguments; on error returns <see langword="null"/> and the message names the bad argument.</summary>
    public static EtlArguments? Parse(IReadOnlyList<string> args, out string? error)
    {
        error = null;
        var parsed = new EtlArguments();
        string? strategyFlag = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "--smart" or "--full" or "--incremental":
                    if (strategyFlag is not null && strategyFlag != arg)
                    {
                        error = $"{arg} cannot be combined with {strategyFlag}: choose one of --smart, --full, --incremental.";
                        return null;
                    }

                    strategyFlag = arg;
                    parsed = parsed with
                    {
                        Strategy = arg switch { "--full" => WindowStrategy.Full, "--incremental" => WindowStrategy.Incremental, _ => WindowStrategy.Smart },
                    };
                    break;
                case "--days":
                    if (i + 1 >= args.Count || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var days) || days < 1 || days > 36_600)
                    {
                        error = $"--days needs a whole number of days from 1 to 36600{(i + 1 < args.Count ? $", not '{args[i + 1]}'" : "")}.";
                        return null;
                    }

                    parsed = parsed with { Days = days };
                    i++;
                    break;
                case "--views":
                    var views = new List<string>();
                    while (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    {
                        views.Add(args[++i]);
                    }

                    if (views.Count == 0)
                    {
                        error = "--views needs at least one name: " + string.Join(", ", KnownNames) + ".";
                        return null;
                    }

                    var resolved = new List<string>();
                    foreach (var view in views)
                    {
                        var full = view.Contains('.', StringComparison.Ordinal) ? view : "etl." + view;
                        var known = KnownNames.FirstOrDefault(n => string.Equals(n, full, StringComparison.OrdinalIgnoreCase));
                        if (known is null)
                        {
                            error = $"Unknown view '{view}'. Known: {string.Join(", ", KnownNames)}.";
                            return null;
                        }

                        if (!resolved.Contains(known))
                        {
                            resolved.Add(known);
                        }
                    }

                    parsed = parsed with { Views = [.. parsed.Views.Concat(resolved).Distinct()] };
                    break;
                case "--skip-refresh":
                    parsed = parsed with { SkipRefresh = true };
                    break;
                case "--connection":
                    if (i + 1 >= args.Count || string.IsNullOrWhiteSpace(args[i + 1]))
                    {
                        error = "--connection needs a connection string.";
                        return null;
                    }

                    parsed = parsed with { Connection = args[++i] };
                    break;
                case "--help" or "-h":
                    parsed = parsed with { Help = true };
                    break;
                default:
                    error = $"Unknown argument '{arg}'.";
                    return null;
            }
        }

        if (parsed.Days is not null && parsed.Strategy == WindowStrategy.Full)
        {
            error = "--days applies to --incremental and --smart, not --full.";
            return null;
        }

        return parsed;
    }

    /// <summary>Runs the pipeline; returns the exit code (0 ok, 1 a refresh failed, 2 bad arguments).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        var options = Parse(args, out var error);
        if (options is null)
        {
            await errors.WriteLineAsync(error);
            await errors.WriteLineAsync(Usage);
            return ExitUsage;
        }

        if (options.Help)
        {
            await output.WriteLineAsync(Usage);
            return ExitOk;
        }

        var connectionString = options.Connection
            ?? NonEmpty(Environment.GetEnvironmentVariable("ConnectionStrings__Default"))
            ?? NonEmpty(Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION"));
        await using var throwaway = connectionString is null ? await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null }, cancellationToken) : null;
        if (throwaway is not null)
        {
            connectionString = await throwaway.CreateDatabaseAsync("etl", cancellationToken);
            await output.WriteLineAsync($"Started a throwaway PostgreSQL at {throwaway.ClusterFolder} (set ConnectionStrings__Default to use your own).");
        }

        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(connectionString!));
        services.AddLogging();
        services.AddMatViewRefresh(_ => { });
        await using var provider = services.BuildServiceProvider();
        var dataSource = provider.GetRequiredService<NpgsqlDataSource>();

        var clock = Stopwatch.StartNew();
        await using (var setup = dataSource.CreateCommand(SchemaSql))
        {
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"Schema etl ready ({GeneratedOrders:N0} generated orders over the last year) in {clock.Elapsed.TotalSeconds:F2}s"));

        int ingested;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await using var ingest = new NpgsqlCommand(IngestSql, connection, transaction);
            ingested = await ingest.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"✓ Data ingestion completed and committed! ({ingested:N0} orders for {DateTime.UtcNow:yyyy-MM-dd})"));
        if (options.SkipRefresh)
        {
            await output.WriteLineAsync("Refresh skipped (--skip-refresh).");
            return ExitOk;
        }

        var selected = options.Views.Count == 0 ? [.. KnownNames] : options.Views;
        var marts = Marts.Where(m => selected.Contains(m.Name)).ToList();
        var views = Views.Where(selected.Contains).ToList();
        var refresher = provider.GetRequiredService<IMaterializedViewRefresher>();
        var label = options.Strategy switch
        {
            WindowStrategy.Full => "full",
            WindowStrategy.Incremental => $"incremental, last {options.Days ?? 2} days",
            _ => "smart",
        };
        await output.WriteLineAsync();
        await output.WriteLineAsync($"Refreshing {selected.Count} views ({label})...");

        var total = Stopwatch.StartNew();
        var results = new List<RefreshResult>();
        foreach (var (_, target) in marts)
        {
            var result = await refresher.RefreshAsync(
                target, new RefreshOptions { Strategy = options.Strategy, Days = options.Days, Trigger = "etl" }, cancellationToken);
            results.Add(result);
            await output.WriteLineAsync(Line(result));
        }

        if (views.Count > 0)
        {
            var batch = await refresher.RefreshManyAsync(
                RefreshSelection.Views(views),
                new RefreshOptions { Mode = options.Strategy == WindowStrategy.Full ? RefreshMode.Full : RefreshMode.Auto, Trigger = "etl" },
                cancellationToken);
            foreach (var result in batch.Results)
            {
                results.Add(result);
                await output.WriteLineAsync(Line(result));
            }

            if (batch.Results.Count == 0 && batch.Error is not null)
            {
                await output.WriteLineAsync($"  ✗ views failed: {batch.Error}");
                return ExitRefreshFailed;
            }
        }

        total.Stop();
        var failed = results.Count(r => !r.Success);
        if (failed > 0)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"⚠ Refresh failed: {failed} of {results.Count} views failed in {total.Elapsed.TotalSeconds:F2}s"));
            return ExitRefreshFailed;
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"Refreshed {results.Count} views in {total.Elapsed.TotalSeconds:F2}s"));
        return ExitOk;
    }

    /// <summary>One result line: name, ok/failed, mode or strategy and why, rows, duration.</summary>
    public static string Line(RefreshResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var mode = result.StrategyUsed is { } strategy
            ? strategy.ToString().ToLowerInvariant()
            : result.ModeUsed?.ToString().ToLowerInvariant() ?? "-";
        var rows = result.StrategyUsed is not null
            ? string.Create(CultureInfo.InvariantCulture, $"-{result.RowsDeleted ?? 0} +{result.RowsInserted ?? 0} rows")
            : result.RowCount is { } count ? string.Create(CultureInfo.InvariantCulture, $"{count} rows") : "";
        var status = result.Success ? "✓ ok    " : "✗ failed";
        var why = result.Success ? result.ModeReason : $"{result.Outcome}: {result.Error}";
        return string.Create(CultureInfo.InvariantCulture,
            $"  {status} {result.Target.Name,-24} {mode,-12} {rows,-18} {result.Duration.TotalMilliseconds,8:F1} ms  ({why})");
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
