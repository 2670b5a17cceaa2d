using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

using static MatViewRefresh.Benchmarks.ReportText;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- capture [--rows N] [--rounds N]</c>:
/// (1) what the capture triggers add to a writer — a 1-row INSERT and a 1,000-row batch INSERT into a watched table
/// against an identical unwatched one, interleaved; (2) after a 1,000-row backdated INSERT spread over 3 old days into
/// the watched fact table of a daily mart (the <c>window</c> report's shape: 5M rows over 365 days), the changed-days
/// refresh the triggers' requests ask for, against the fixed 2-day window and a full refresh.
/// </summary>
internal static class CaptureReport
{
    private const int Singles = 200;
    private const int Batches = 20;

    private const string Query = """
        SELECT day, count(*) AS orders, sum(amount) AS revenue, max(amount) AS max_amount
          FROM bench.sales
         WHERE day >= @from AND day < @to
         GROUP BY day
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 5_000_000;
        var rounds = 10;
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
                default:
                    await Console.Error.WriteLineAsync("usage: capture [--rows N] [--rounds N]");
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
            var o = new StringBuilder();
            var postgres = await ScalarAsync<string>(dataSource, "SHOW server_version");
            o.AppendLine(CultureInfo.InvariantCulture, $"## Change capture ({DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC)");
            o.AppendLine();
            o.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} cores, {Cpu()}; PostgreSQL {postgres} (throwaway, `fsync=off`, local TCP); {RuntimeInformation.FrameworkDescription}. Load average at the start: {loadAtStart}.");
            o.AppendLine();

            // Part 1: the writer's cost.
            Console.Error.WriteLine("part 1: inserts into a watched and an unwatched table...");
            await using (var setup = await CaptureSetup.CreateAsync(dataSource))
            {
                var samples = new Dictionary<string, List<double>>
                {
                    ["1-row INSERT, unwatched"] = [], ["1-row INSERT, watched"] = [],
                    ["1,000-row INSERT (3 days), unwatched"] = [], ["1,000-row INSERT (3 days), watched"] = [],
                };
                for (var round = 0; round < rounds; round++)
                {
                    await setup.ClearRequestsAsync();
                    foreach (var watched in round % 2 == 0 ? new[] { false, true } : [true, false])
                    {
                        var table = watched ? "capture.watched" : "capture.unwatched";
                        var suffix = watched ? "watched" : "unwatched";
                        for (var i = 0; i < Singles; i++)
                        {
                            var started = Stopwatch.GetTimestamp();
                            await setup.InsertOneAsync(table);
                            samples["1-row INSERT, " + suffix].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                        }

                        for (var i = 0; i < Batches; i++)
                        {
                            var started = Stopwatch.GetTimestamp();
                            await setup.InsertBatchAsync(table);
                            samples["1,000-row INSERT (3 days), " + suffix].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                        }
                    }
                }

                var requests = await ScalarAsync<long>(dataSource, "SELECT count(*) FROM matview_refresh.refresh_requests");

                // The server alone: transactions looped in a DO block (no client, network or pool), interleaved.
                var loops = new Dictionary<string, List<double>> { ["1-row, unwatched"] = [], ["1-row, watched"] = [], ["1,000-row, unwatched"] = [], ["1,000-row, watched"] = [] };
                for (var round = 0; round < rounds; round++)
                {
                    await setup.ClearRequestsAsync();
                    foreach (var watched in round % 2 == 0 ? new[] { false, true } : [true, false])
                    {
                        var table = watched ? "capture.watched" : "capture.unwatched";
                        var suffix = watched ? "watched" : "unwatched";
                        loops["1-row, " + suffix].Add(await setup.ServerLoopAsync(table, batch: false, 1_000));
                        loops["1,000-row, " + suffix].Add(await setup.ServerLoopAsync(table, batch: true, 20));
                    }
                }

                // The server's own view: EXPLAIN ANALYZE times the statement and its triggers, unaffected by the client.
                var explained = new List<(double Execution, double Triggers)>();
                var plainExecution = new List<double>();
                for (var i = 0; i < Batches * rounds; i++)
                {
                    explained.Add(await setup.ExplainBatchAsync("capture.watched"));
                    plainExecution.Add((await setup.ExplainBatchAsync("capture.unwatched")).ExecutionMs);
                }

                o.AppendLine(CultureInfo.InvariantCulture, $"### Cost to the writer: {rounds} interleaved rounds of {Singles} 1-row and {Batches} 1,000-row INSERTs per table (autocommit, each its own transaction)");
                o.AppendLine();
                o.AppendLine("| insert | calls | median | mean | p95 | added (median) |");
                o.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
                foreach (var (name, s) in samples)
                {
                    var added = "—";
                    if (name.EndsWith(", watched", StringComparison.Ordinal))
                    {
                        var baseline = samples[name[..^", watched".Length] + ", unwatched"];
                        added = string.Create(CultureInfo.InvariantCulture, $"{Signed(Median(s) - Median(baseline))} ms ({((Median(s) / Median(baseline)) - 1) * 100:+0.0;−0.0}%)");
                    }

                    o.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {s.Count} | {Ms(Median(s))} | {Ms(s.Average())} | {Ms(Percentile(s, 0.95))} | {added} |");
                }

                o.AppendLine();
                o.AppendLine(CultureInfo.InvariantCulture, $"Requests written by the watched table in the last round: {requests:N0} (one per statement: a batch's three days 03-01..03-03 are one contiguous run).");
                o.AppendLine();
                o.AppendLine(CultureInfo.InvariantCulture, $"Server alone (`DO` block, each INSERT committed; {rounds} interleaved rounds of 1,000 1-row and 20 1,000-row transactions per table; median of the rounds' per-transaction means): 1-row {Ms(Median(loops["1-row, unwatched"]))} unwatched, {Ms(Median(loops["1-row, watched"]))} watched (**{Signed(Median(loops["1-row, watched"]) - Median(loops["1-row, unwatched"]))} ms**); 1,000-row {Ms(Median(loops["1,000-row, unwatched"]))} unwatched, {Ms(Median(loops["1,000-row, watched"]))} watched (**{((Median(loops["1,000-row, watched"]) / Median(loops["1,000-row, unwatched"])) - 1) * 100:+0.0;−0.0}%**).");
                o.AppendLine();
                var triggerShare = Median([.. explained.Select(e => e.Triggers)]) / Median(plainExecution);
                o.AppendLine(CultureInfo.InvariantCulture, $"Server side, `EXPLAIN (ANALYZE)` of the 1,000-row INSERT ({explained.Count} each, rolled back): unwatched execution median {Ms(Median(plainExecution))}; watched {Ms(Median([.. explained.Select(e => e.Execution)]))}, of which the capture triggers **{Ms(Median([.. explained.Select(e => e.Triggers)]))}** = **{triggerShare * 100:0.0}%** of the unwatched statement (the transition table's capture itself is not in the trigger time: it is in the difference of executions).");
                o.AppendLine();
            }

            // Part 2: changed days vs 2-day window vs full.
            Console.Error.WriteLine($"part 2: the fact table ({rows:N0} rows over 365 days)...");
            var seed = Stopwatch.StartNew();
            await ExecuteAsync(dataSource, $"""
                CREATE SCHEMA bench;
                CREATE TABLE bench.sales (sale_id bigint NOT NULL, day date NOT NULL, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
                INSERT INTO bench.sales
                SELECT i, current_date - 364 + ((i - 1) * 365 / {rows})::int, (i * 7919) % 100000, ((i * 37) % 10000) / 100.0
                  FROM generate_series(1, {rows}::bigint) AS i;
                CREATE INDEX sales_day ON bench.sales (day);
                CREATE TABLE bench.daily_sales (day date PRIMARY KEY, orders bigint NOT NULL, revenue numeric NOT NULL, max_amount numeric NOT NULL);
                """);
            await ExecuteAsync(dataSource, "VACUUM (ANALYZE) bench.sales");
            var seedSeconds = seed.Elapsed.TotalSeconds;

            await using var services = RefreshFixture.BuildServices(dataSource);
            var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
            var target = RefreshTarget.Window("bench.daily_sales", "day", Query);
            await services.GetRequiredService<IRefreshWatcher>().WatchAsync(target);
            var full = new RefreshOptions { Strategy = WindowStrategy.Full, Trigger = "benchmark" };
            var twoDays = new RefreshOptions { Strategy = WindowStrategy.Incremental, Days = 2, Trigger = "benchmark" };
            await RefreshAsync(refresher, target, full);

            var names = new[] { "changed days (from the triggers' requests)", "fixed window: last 2 days", "full" };
            var times = names.Select(_ => new List<double>()).ToArray();
            var counts = new (long? Deleted, long? Inserted)[3];
            var stale = new long[3];
            var random = new Random(7);
            string? mode = null;
            Console.Error.WriteLine($"{rounds} rounds: backdated insert, then the three refreshes...");
            for (var round = 0; round < rounds; round++)
            {
                await ExecuteAsync(dataSource, "TRUNCATE matview_refresh.refresh_requests");
                var back = random.Next(30, 300);
                await using (var insert = dataSource.CreateCommand("""
                    INSERT INTO bench.sales
                    SELECT 10000000 + i, current_date - $1 - (i % 3) * 7, i % 1000, 1.00 FROM generate_series(1, 1000) AS i
                    """))
                {
                    insert.Parameters.Add(new NpgsqlParameter { Value = back });
                    await insert.ExecuteNonQueryAsync();
                }

                var requests = new List<RefreshRequestRow>();
                await using (var read = dataSource.CreateCommand("SELECT first_day, last_day, full_refresh FROM matview_refresh.refresh_requests ORDER BY id"))
                await using (var reader = await read.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync())
                    {
                        requests.Add(new(reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateOnly>(1), reader.GetBoolean(2)));
                    }
                }

                var changed = ChangeCaptureRequests.From(requests).Apply(new RefreshOptions { Trigger = "benchmark" }, DateTimeOffset.UtcNow);
                var methods = new[] { changed, twoDays, full };
                for (var m = 0; m < 3; m++)
                {
                    // Each method starts from the same state: the mart stale on the three backdated days.
                    if (m > 0)
                    {
                        await ExecuteAsync(dataSource, "UPDATE bench.daily_sales SET orders = -1 WHERE day IN (SELECT DISTINCT day FROM bench.sales WHERE sale_id > 10000000)");
                    }

                    var started = Stopwatch.GetTimestamp();
                    var result = await RefreshAsync(refresher, target, methods[m]);
                    times[m].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    counts[m] = (result.RowsDeleted, result.RowsInserted);
                    mode = m == 0 ? await ScalarAsync<string>(dataSource, "SELECT mode FROM matview_refresh.refresh_history WHERE target = 'bench.daily_sales' ORDER BY id DESC LIMIT 1") : mode;
                    stale[m] = await ScalarAsync<long>(dataSource, $"""
                        SELECT count(*) FROM ((SELECT * FROM bench.daily_sales EXCEPT SELECT * FROM ({Query.Replace("@from", "'-infinity'::date", StringComparison.Ordinal).Replace("@to", "'infinity'::date", StringComparison.Ordinal)}) r)) d
                        """);
                }

                await ExecuteAsync(dataSource, "DELETE FROM bench.sales WHERE sale_id > 10000000");
                await RefreshAsync(refresher, target, full);
            }

            var factRows = await ScalarAsync<long>(dataSource, "SELECT count(*) FROM bench.sales");
            o.AppendLine(CultureInfo.InvariantCulture, $"### After a 1,000-row backdated INSERT over 3 old days (30–300 days back): changed days vs fixed 2-day window vs full");
            o.AppendLine();
            o.AppendLine(CultureInfo.InvariantCulture, $"Fact table `bench.sales`: {factRows:N0} rows over 365 days (in date order, index on `day`, VACUUM ANALYZE; seeded in {seedSeconds:0} s), watched; mart `bench.daily_sales`: one row per day (count, sum, max), as in the `window` report. {rounds} rounds, each: the INSERT (through the capture triggers), then the three refreshes in this order, each from the mart stale on the three days. Last changed-days mode: `{mode}`.");
            o.AppendLine();
            o.AppendLine("| refresh | calls | median | mean | min | rows deleted | rows inserted | mart rows still wrong after it |");
            o.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            for (var m = 0; m < 3; m++)
            {
                var s = times[m];
                o.AppendLine(CultureInfo.InvariantCulture, $"| {names[m]} | {s.Count} | {Ms(Median(s))} | {Ms(s.Average())} | {Ms(s.Min())} | {counts[m].Deleted:N0} | {counts[m].Inserted:N0} | {stale[m]:N0} |");
            }

            o.AppendLine();
            o.AppendLine(CultureInfo.InvariantCulture, $"Full ÷ changed days (medians): **{Median(times[2]) / Median(times[0]):0.0}×**. Load average at the end: {LoadAverage()}. Whole report: {total.Elapsed.TotalSeconds:0} s.");
            Console.Write(o.ToString());
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

    private static async Task<RefreshResult> RefreshAsync(IMaterializedViewRefresher refresher, RefreshTarget target, RefreshOptions options)
    {
        var result = await refresher.RefreshAsync(target, options);
        return result.Outcome == RefreshOutcome.Succeeded ? result : throw new InvalidOperationException($"The refresh failed: {result.Error}");
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 600;
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
    }
}
