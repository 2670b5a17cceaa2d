using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

using static MatViewRefresh.Benchmarks.ReportText;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- window [--rows N] [--rounds N]</c>: an
/// incremental window refresh (the last 2 days) against a full refresh of a daily mart over a fact table of 5M rows
/// spanning 365 days, through <see cref="IMaterializedViewRefresher.RefreshAsync"/> and as plain SQL (one transaction:
/// <c>DELETE</c> + <c>INSERT … SELECT</c>), in interleaved rounds on one throwaway PostgreSQL.
/// </summary>
internal static class WindowReport
{
    private const string Query = """
        SELECT sold_on AS day, count(*) AS orders, sum(amount) AS revenue, max(amount) AS max_amount
          FROM bench.sales
         WHERE sold_on >= @from AND sold_on < @to
         GROUP BY sold_on
        """;

    private static readonly string[] MethodNames =
        ["library, full", "library, incremental (2 days)", "plain SQL, full", "plain SQL, incremental (2 days)"];

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 5_000_000;
        var rounds = 8;
        var scattered = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rows" when i + 1 < args.Length:
                    rows = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--rounds" when i + 1 < args.Length:
                    rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--scattered":
                    scattered = true; // every day's rows spread over the whole table (row i on day i % 365), not in date order
                    break;
                default:
                    await Console.Error.WriteLineAsync("usage: window [--rows N] [--rounds N] [--scattered]");
                    return 2;
            }
        }

        var total = Stopwatch.StartNew();
        var loadAtStart = LoadAverage();
        Console.Error.WriteLine("starting PostgreSQL...");
        var (server, connectionString) = await BenchmarkDatabase.StartAsync();
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            Console.Error.WriteLine($"creating the fact table ({rows:N0} rows over 365 days)...");
            var day = scattered ? "current_date - (i % 365)::int" : $"current_date - 364 + ((i - 1) * 365 / {rows})::int";
            var seed = Stopwatch.StartNew();
            await ExecuteAsync(dataSource, $"""
                CREATE SCHEMA bench;
                CREATE TABLE bench.sales (sale_id bigint NOT NULL, sold_on date NOT NULL, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
                INSERT INTO bench.sales
                SELECT i, {day}, (i * 7919) % 100000, ((i * 37) % 10000) / 100.0
                  FROM generate_series(1, {rows}::bigint) AS i;
                CREATE INDEX sales_sold_on ON bench.sales (sold_on);
                CREATE TABLE bench.daily_sales (day date PRIMARY KEY, orders bigint NOT NULL, revenue numeric NOT NULL, max_amount numeric NOT NULL);
                CREATE TABLE bench.daily_sales_plain (LIKE bench.daily_sales INCLUDING ALL);
                """);
            await ExecuteAsync(dataSource, "VACUUM (ANALYZE) bench.sales");
            var seedSeconds = seed.Elapsed.TotalSeconds;

            await using var services = RefreshFixture.BuildServices(dataSource);
            var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
            var target = RefreshTarget.Window("bench.daily_sales", "day", Query);
            var full = new RefreshOptions { Strategy = WindowStrategy.Full, Trigger = "benchmark" };
            var incremental = new RefreshOptions { Strategy = WindowStrategy.Incremental, Days = 2, Trigger = "benchmark" };

            // The library's window is the last 2 days in UTC on the database clock; the plain SQL uses the same days.
            DateOnly today;
            await using (var clock = dataSource.CreateCommand("SELECT (now() AT TIME ZONE 'UTC')::date"))
            {
                today = (DateOnly)(await clock.ExecuteScalarAsync())!;
            }

            var counts = new (long? Deleted, long? Inserted)[4];
            var methods = new Func<Task>[]
            {
                async () => counts[0] = await LibraryAsync(refresher, target, full),
                async () => counts[1] = await LibraryAsync(refresher, target, incremental),
                async () => counts[2] = await PlainAsync(dataSource, DateOnly.MinValue, DateOnly.MaxValue),
                async () => counts[3] = await PlainAsync(dataSource, today.AddDays(-1), today.AddDays(1)),
            };

            Console.Error.WriteLine("warming up (one round, and 20 incremental calls each way)...");
            foreach (var method in methods)
            {
                await method();
            }

            for (var i = 0; i < 20; i++)
            {
                await methods[1]();
                await methods[3]();
            }

            // Each round: the four methods in an order rotated through the round; the incremental methods are fast, so
            // each round times them 5 times (samples: every call).
            const int IncrementalRepeats = 5;
            var samples = new List<double>[4];
            for (var m = 0; m < 4; m++)
            {
                samples[m] = [];
            }

            Console.Error.WriteLine($"{rounds} interleaved rounds...");
            for (var round = 0; round < rounds; round++)
            {
                for (var k = 0; k < 4; k++)
                {
                    var m = (round + k) % 4;
                    var repeats = m is 1 or 3 ? IncrementalRepeats : 1;
                    for (var r = 0; r < repeats; r++)
                    {
                        var started = Stopwatch.GetTimestamp();
                        await methods[m]();
                        samples[m].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
                }
            }

            Console.Error.WriteLine("query plans...");
            var planIncremental = await ExplainAsync(dataSource, today.AddDays(-1), today.AddDays(1));
            var planFull = await ExplainAsync(dataSource, DateOnly.MinValue, DateOnly.MaxValue);
            long factRows;
            await using (var count = dataSource.CreateCommand("SELECT count(*) FROM bench.sales"))
            {
                factRows = (long)(await count.ExecuteScalarAsync())!;
            }

            var postgres = await ScalarStringAsync(dataSource, "SHOW server_version");
            Print(postgres, loadAtStart, scattered, factRows, rounds, IncrementalRepeats, seedSeconds, samples, counts, planIncremental, planFull, total.Elapsed);
            return 0;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static async Task<(long?, long?)> LibraryAsync(IMaterializedViewRefresher refresher, RefreshTarget target, RefreshOptions options)
    {
        var result = await refresher.RefreshAsync(target, options);
        return result.Outcome == RefreshOutcome.Succeeded && result.StrategyUsed == options.Strategy
            ? (result.RowsDeleted, result.RowsInserted)
            : throw new InvalidOperationException($"The window refresh did not succeed as asked: {result.Outcome} {result.StrategyUsed} {result.Error}");
    }

    /// <summary>The same work as plain SQL: one transaction, <c>DELETE</c> of the window, then <c>INSERT … SELECT</c> of the query for it.</summary>
    private static async Task<(long?, long?)> PlainAsync(NpgsqlDataSource dataSource, DateOnly from, DateOnly to)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var delete = new NpgsqlCommand("DELETE FROM bench.daily_sales_plain WHERE day >= @from AND day < @to", connection, transaction);
        await using var insert = new NpgsqlCommand("INSERT INTO bench.daily_sales_plain " + Query, connection, transaction);
        foreach (var command in new[] { delete, insert })
        {
            command.Parameters.Add(new NpgsqlParameter("from", NpgsqlDbType.Date) { Value = from });
            command.Parameters.Add(new NpgsqlParameter("to", NpgsqlDbType.Date) { Value = to });
        }

        long deleted = await delete.ExecuteNonQueryAsync();
        long inserted = await insert.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        return (deleted, inserted);
    }

    private static async Task<string> ExplainAsync(NpgsqlDataSource dataSource, DateOnly from, DateOnly to)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) INSERT INTO bench.daily_sales_plain " + Query, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter("from", NpgsqlDbType.Date) { Value = from });
        command.Parameters.Add(new NpgsqlParameter("to", NpgsqlDbType.Date) { Value = to });
        await using (var delete = new NpgsqlCommand("DELETE FROM bench.daily_sales_plain WHERE day >= @from AND day < @to", connection, transaction))
        {
            delete.Parameters.Add(new NpgsqlParameter("from", NpgsqlDbType.Date) { Value = from });
            delete.Parameters.Add(new NpgsqlParameter("to", NpgsqlDbType.Date) { Value = to });
            await delete.ExecuteNonQueryAsync();
        }

        var lines = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                lines.Add(reader.GetString(0));
            }
        }

        await transaction.RollbackAsync();
        return string.Join(Environment.NewLine, lines);
    }

    private static void Print(
        string postgres, string loadAtStart, bool scattered, long factRows, int rounds, int repeats, double seedSeconds, List<double>[] samples,
        (long? Deleted, long? Inserted)[] counts, string planIncremental, string planFull, TimeSpan elapsed)
    {
        var o = new StringBuilder();
        o.AppendLine(CultureInfo.InvariantCulture, $"## Window refresh: incremental (2 days) vs full ({DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} cores, {Cpu()}; PostgreSQL {postgres} (throwaway, `fsync=off`, local TCP); {RuntimeInformation.FrameworkDescription}; Npgsql {typeof(NpgsqlConnection).Assembly.GetName().Version?.ToString(3)}.");
        o.AppendLine(CultureInfo.InvariantCulture, $"Fact table `bench.sales`: {factRows:N0} rows over 365 days (plain, logged table, {(scattered ? "rows of each day scattered over the whole table (`--scattered`)" : "in date order, as appended")}, index on `sold_on`, VACUUM ANALYZE; seeded in {seedSeconds:0} s). Mart: one row per day (count, sum, max).");
        o.AppendLine(CultureInfo.InvariantCulture, $"{rounds} interleaved rounds (order rotated), each: full once, incremental {repeats}× per method. Load average at the start: {loadAtStart}; at the end: {LoadAverage()}. Whole report: {elapsed.TotalSeconds:0} s.");
        o.AppendLine();
        o.AppendLine("| method | calls | median | mean | min | rows deleted | rows inserted |");
        o.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (var m = 0; m < 4; m++)
        {
            var s = samples[m];
            o.AppendLine(CultureInfo.InvariantCulture, $"| {MethodNames[m]} | {s.Count} | {Ms(Median(s))} | {Ms(s.Average())} | {Ms(s.Min())} | {counts[m].Deleted:N0} | {counts[m].Inserted:N0} |");
        }

        var library = Median(samples[0]) / Median(samples[1]);
        var plain = Median(samples[2]) / Median(samples[3]);
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"Full ÷ incremental (medians): library **{library:0.0}×**, plain SQL **{plain:0.0}×** (means: {samples[0].Average() / samples[1].Average():0.0}× and {samples[2].Average() / samples[3].Average():0.0}×).");
        o.AppendLine(CultureInfo.InvariantCulture, $"Library − plain SQL (medians): full {Signed(Median(samples[0]) - Median(samples[2]))} ms, incremental {Signed(Median(samples[1]) - Median(samples[3]))} ms.");
        o.AppendLine(CultureInfo.InvariantCulture, $"Target ≥ 30× through the library: {(library >= 30 ? "met" : "NOT met")}.");
        o.AppendLine();
        o.AppendLine("`EXPLAIN (ANALYZE, BUFFERS)` of the incremental window's INSERT … SELECT:");
        o.AppendLine();
        o.AppendLine("```");
        o.AppendLine(planIncremental);
        o.AppendLine("```");
        o.AppendLine();
        o.AppendLine("and of the full refresh's:");
        o.AppendLine();
        o.AppendLine("```");
        o.AppendLine(planFull);
        o.AppendLine("```");
        Console.Write(o.ToString());
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> ScalarStringAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
