using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- queue [options]</c>: the durable queue on one
/// throwaway PostgreSQL. (1) What EnqueueAsync adds to a 1-row insert transaction, in paired interleaved rounds (order rotated).
/// (2) NOTIFY's commit-time lock: concurrent 1-row writers with EnqueueAsync, without and with NOTIFY. (3) Throughput: two
/// worker instances (two containers, each its own connection pool) while writers enqueue over 10,000 keys; then every request
/// must be reflected (mart = recomputation), with the backlog, the process's memory and the lag percentiles reported.
/// </summary>
internal static class QueueReport
{
    private const string Usage = "queue [--rounds N] [--contention-seconds S] [--contention-writers N] [--seconds S] [--writers N] [--per-tx N] [--keys N] [--settle-ms N] [--max-wait-ms N] [--targets-per-run N] [--concurrent-runs N] [--rate N] [--plpgsql 0|1] [--covering 0|1] [--shares 0|1] [--warmup S]";

    public static async Task<int> RunAsync(string[] args)
    {
        var settings = new Dictionary<string, double>
        {
            ["rounds"] = 3000, ["contention-seconds"] = 5, ["contention-writers"] = 8, ["seconds"] = 20, ["writers"] = 8, ["per-tx"] = 10, ["keys"] = 10_000,
            ["settle-ms"] = 1000, ["max-wait-ms"] = double.NaN, ["targets-per-run"] = 100, ["concurrent-runs"] = 8, ["rate"] = 0, ["plpgsql"] = 0, ["covering"] = 0, ["shares"] = 1, ["warmup"] = 0,
        };
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || !settings.ContainsKey(args[i][2..]) || i + 1 >= args.Length
                || !double.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var value))
            {
                await Console.Error.WriteLineAsync($"bad option '{args[i]}'; usage: {Usage}");
                return 2;
            }

            settings[args[i][2..]] = value;
        }

        Console.Error.WriteLine("starting PostgreSQL...");
        var (server, connectionString) = await BenchmarkDatabase.StartAsync();
        await using var _ = server;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var command = dataSource.CreateCommand(QueueBench.Schema))
        {
            await command.ExecuteNonQueryAsync();
        }

        if (settings["plpgsql"] > 0)
        {
            await using var replace = dataSource.CreateCommand(QueueBench.PlpgsqlFunction);
            await replace.ExecuteNonQueryAsync();
        }

        if (settings["covering"] > 0)
        {
            await using var index = dataSource.CreateCommand(QueueBench.CoveringIndex);
            await index.ExecuteNonQueryAsync();
        }

        var function = (settings["plpgsql"] > 0 ? "PL/pgSQL" : "SQL") + (settings["covering"] > 0 ? ", reading a covering index (k) INCLUDE (v)" : ", reading the table by an index on k");
        await using var plain = QueueBench.Instance(connectionString, notify: false);
        await using var notify = QueueBench.Instance(connectionString, notify: true);
        await plain.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {await ScalarAsync<string>(dataSource, "SELECT version()")}; {DateTime.UtcNow:yyyy-MM-dd}; refresh function in {function}");

        if (settings["rounds"] > 0)
        {
            await OverheadAsync(dataSource, plain.GetRequiredService<IRefreshQueue>(), notify.GetRequiredService<IRefreshQueue>(), (int)settings["rounds"]);
        }

        if (settings["contention-seconds"] > 0)
        {
            await ContentionAsync(dataSource, plain.GetRequiredService<IRefreshQueue>(), notify.GetRequiredService<IRefreshQueue>(), (int)settings["contention-writers"], TimeSpan.FromSeconds(settings["contention-seconds"]));
        }

        if (settings["seconds"] > 0)
        {
            var settle = TimeSpan.FromMilliseconds(settings["settle-ms"]);
            var worker = new WorkerSettings(
                settle, double.IsNaN(settings["max-wait-ms"]) ? settle : TimeSpan.FromMilliseconds(settings["max-wait-ms"]), (int)settings["targets-per-run"], (int)settings["concurrent-runs"], TimeSpan.FromSeconds(settings["warmup"]),
                settings["shares"] > 0);
            await ThroughputAsync(connectionString, dataSource, TimeSpan.FromSeconds(settings["seconds"]), (int)settings["writers"], (int)settings["per-tx"], (int)settings["keys"], settings["rate"], worker);
        }
        return 0;
    }

    private static async Task OverheadAsync(NpgsqlDataSource dataSource, IRefreshQueue queue, IRefreshQueue notifyQueue, int rounds)
    {
        Console.Error.WriteLine($"(1) enqueue overhead: {rounds} interleaved rounds...");
        string[] names = ["1-row insert tx", "+ EnqueueAsync", "+ EnqueueAsync with NOTIFY"];
        IRefreshQueue?[] queues = [null, queue, notifyQueue];
        int[][] orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];
        var times = names.Select(_ => new List<double>(rounds)).ToArray();
        int[] key = [1];
        for (var warm = 0; warm < 300; warm++)
        {
            foreach (var q in queues)
            {
                await QueueBench.WriteAsync(dataSource, q, key, 1);
            }
        }

        for (var round = 0; round < rounds; round++)
        {
            foreach (var method in orders[round % orders.Length])
            {
                var start = Stopwatch.GetTimestamp();
                await QueueBench.WriteAsync(dataSource, queues[method], key, 1);
                times[method].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }

        Console.WriteLine();
        Console.WriteLine("| transaction | median | p90 | mean | median added (paired) |");
        Console.WriteLine("|---|---|---|---|---|");
        for (var m = 0; m < names.Length; m++)
        {
            var added = m == 0 ? "—" : $"{Percentile(times[m].Zip(times[0], (a, b) => a - b).ToList(), 0.5):F3} ms";
            Console.WriteLine($"| {names[m]} | {Percentile(times[m], 0.5):F3} ms | {Percentile(times[m], 0.9):F3} ms | {times[m].Average():F3} ms | {added} |");
        }
    }

    private static async Task ContentionAsync(NpgsqlDataSource dataSource, IRefreshQueue queue, IRefreshQueue notifyQueue, int writers, TimeSpan duration)
    {
        Console.Error.WriteLine($"(2) NOTIFY under contention: {writers} writers, {duration.TotalSeconds} s each way...");
        Console.WriteLine();
        Console.WriteLine($"| {writers} concurrent writers, 1-row insert + EnqueueAsync per tx | transactions/s | mean latency | p99 latency |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, q) in new[] { ("without NOTIFY", queue), ("with NOTIFY", notifyQueue) })
        {
            var latencies = new List<double>[writers];
            var stop = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
            {
                var mine = latencies[w] = [];
                int[] key = [w];
                while (stop.Elapsed < duration)
                {
                    var start = Stopwatch.GetTimestamp();
                    await QueueBench.WriteAsync(dataSource, q, key, 1);
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            })));
            var all = latencies.SelectMany(l => l).ToList();
            Console.WriteLine($"| {name} | {all.Count / stop.Elapsed.TotalSeconds:N0} | {all.Average():F3} ms | {Percentile(all, 0.99):F3} ms |");
        }

        await using var clear = dataSource.CreateCommand("TRUNCATE bench_q.src, bench_q.mart, matview_refresh.refresh_requests");
        await clear.ExecuteNonQueryAsync();
    }

    /// <summary>The two worker instances' settings in the throughput run.</summary>
    /// <param name="Warmup">Writing before the measured window: the first settle delay makes every key due at once, a burst a running system does not see.</param>
    private sealed record WorkerSettings(TimeSpan Settle, TimeSpan MaxWait, int TargetsPerRun, int ConcurrentRuns, TimeSpan Warmup, bool Shares)
    {
        public ServiceProvider Instance(string connectionString) =>
            QueueBench.Instance(connectionString, notify: false, worker: true, Settle, MaxWait, TargetsPerRun, ConcurrentRuns, Shares);

        public override string ToString() =>
            $"settle {Settle.TotalMilliseconds:N0} ms, MaxWait {MaxWait.TotalMilliseconds:N0} ms, MinInterval 0, up to {TargetsPerRun} targets per run, {ConcurrentRuns} runs at once per instance, shares {(Shares ? "on" : "off")}";
    }

    /// <param name="rate">Requests per second the writers enqueue together, paced (0: as fast as they can — then they take the CPU the workers need).</param>
    private static async Task ThroughputAsync(
        string connectionString, NpgsqlDataSource dataSource, TimeSpan duration, int writers, int perTx, int keys, double rate, WorkerSettings worker)
    {
        var paced = rate > 0 ? $"paced at {rate:N0} requests/s" : "unpaced";
        Console.Error.WriteLine($"(3) throughput: two worker instances ({worker}), {writers} writers x {perTx} requests per transaction ({paced}) over {keys:N0} keys for {duration.TotalSeconds} s...");
        await using var first = worker.Instance(connectionString);
        await using var second = worker.Instance(connectionString);
        await QueueBench.StartWorkerAsync(first);
        await QueueBench.StartWorkerAsync(second);
        var started = await ScalarAsync<DateTime>(dataSource, "SELECT now()");
        var measuredFrom = new DateTimeOffset(started, TimeSpan.Zero) + worker.Warmup;
        duration += worker.Warmup;
        var requests = 0L;
        var backlog = new List<long>();
        var heap = new List<long>();
        var stop = Stopwatch.StartNew();
        var atWarmup = Task.Run(async () =>
        {
            await Task.Delay(worker.Warmup);
            return (Requests: Interlocked.Read(ref requests), Elapsed: stop.Elapsed);
        });
        var sampler = Task.Run(async () =>
        {
            while (stop.Elapsed < duration)
            {
                await Task.Delay(1000);
                backlog.Add(await ScalarAsync<long>(dataSource, "SELECT count(*) FROM matview_refresh.refresh_requests"));
                heap.Add(GC.GetTotalMemory(false));
            }
        });
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            var queues = new[] { first.GetRequiredService<IRefreshQueue>(), second.GetRequiredService<IRefreshQueue>() };
            // Each writer's time per request: a transaction of n requests (fewer than perTx when a key was drawn twice) is
            // followed by n of them, so the writers together offer exactly the rate, late transactions catching up.
            var perRequest = rate > 0 ? TimeSpan.FromSeconds(writers / rate) : TimeSpan.Zero;
            var next = stop.Elapsed + (perRequest * perTx * w / writers);
            while (stop.Elapsed < duration)
            {
                var ahead = next - stop.Elapsed;
                if (perRequest > TimeSpan.Zero && ahead > TimeSpan.Zero)
                {
                    await Task.Delay(ahead);
                }

                var batch = Enumerable.Range(0, perTx).Select(_ => random.Next(keys)).Distinct().ToArray();
                next += perRequest * batch.Length;
                await QueueBench.WriteAsync(dataSource, queues[random.Next(2)], batch, random.Next(1, 100));
                Interlocked.Add(ref requests, batch.Length);
            }
        })));
        var writePhase = stop.Elapsed;
        var warm = await atWarmup;
        await sampler;
        const string SucceededRuns = "SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'queue' AND success";
        var runsBeforeDrain = await ScalarAsync<long>(dataSource, SucceededRuns);
        var drain = Stopwatch.StartNew();
        while (await ScalarAsync<long>(dataSource, "SELECT count(*) FROM matview_refresh.refresh_requests") > 0 && drain.Elapsed < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(200);
        }

        var drained = drain.Elapsed;
        await QueueBench.StopWorkerAsync(first);
        await QueueBench.StopWorkerAsync(second);
        var mismatches = await ScalarAsync<long>(dataSource, QueueBench.Mismatches);
        var runs = await ScalarAsync<long>(dataSource, SucceededRuns);
        var failures = await ScalarAsync<long>(dataSource, "SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'queue' AND NOT success");
        var whole = await first.GetRequiredService<IRefreshLog>().GetSummaryAsync(since: new DateTimeOffset(started, TimeSpan.Zero));
        var summary = await first.GetRequiredService<IRefreshLog>().GetSummaryAsync(since: measuredFrom);
        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| workers | two instances: {worker} |");
        Console.WriteLine($"| write phase | {writePhase.TotalSeconds:F1} s, {writers} writers, ≤ {perTx} requests per transaction (one per distinct key), {paced} |");
        Console.WriteLine($"| runs while writing | {runsBeforeDrain:N0} ({runsBeforeDrain / writePhase.TotalSeconds:N0}/s) |");
        Console.WriteLine($"| requests enqueued | {requests:N0} ({requests / writePhase.TotalSeconds:N0}/s) over {keys:N0} keys |");
        Console.WriteLine($"| requests enqueued after the {worker.Warmup.TotalSeconds:N0} s warm-up | {requests - warm.Requests:N0} in {(writePhase - warm.Elapsed).TotalSeconds:F1} s ({(requests - warm.Requests) / (writePhase - warm.Elapsed).TotalSeconds:N0}/s) |");
        Console.WriteLine($"| runs (two instances) | {runs:N0} succeeded, {failures:N0} failed ({(double)requests / Math.Max(1, runs):F1} requests per run) |");
        Console.WriteLine($"| backlog during the write phase (pending rows, sampled each second) | {string.Join(", ", backlog.Select(b => b.ToString("N0", CultureInfo.InvariantCulture)))} |");
        Console.WriteLine($"| drain after the writers stopped | {drained.TotalSeconds:F1} s ({runs - runsBeforeDrain:N0} runs, {(runs - runsBeforeDrain) / Math.Max(0.001, drained.TotalSeconds):N0} runs/s without writers) |");
        Console.WriteLine($"| load average (1, 5, 15 min) at the end | {File.ReadAllText("/proc/loadavg").Split(' ')[..3].Aggregate((a, b) => a + ", " + b)} |");
        Console.WriteLine($"| every request reflected (mart = recomputation) | {(mismatches == 0 ? "yes" : $"NO: {mismatches} keys differ")} |");
        Console.WriteLine($"| managed heap of the process (both instances and the writers), sampled each second | min {heap.DefaultIfEmpty().Min() / 1e6:F0} MB, max {heap.DefaultIfEmpty().Max() / 1e6:F0} MB |");
        Console.WriteLine($"| change-to-visible lag p50 / p95 / p99, whole run | {Ms(whole.LagP50)} / {Ms(whole.LagP95)} / {Ms(whole.LagP99)} |");
        Console.WriteLine($"| change-to-visible lag p50 / p95 / p99, after the {worker.Warmup.TotalSeconds:N0} s warm-up | {Ms(summary.LagP50)} / {Ms(summary.LagP95)} / {Ms(summary.LagP99)} ({summary.Count:N0} refreshes) |");
        Console.WriteLine($"| refresh duration p50 / p99 | {Ms(summary.P50)} / {Ms(summary.P99)} |");
        Console.WriteLine($"| targets offered to grouped claims (refreshed, empty, failing, not due, held elsewhere), per instance | {QueueBench.GroupStats(first)}; {QueueBench.GroupStats(second)} |");
        var bound = worker.Settle + (summary.P99 ?? TimeSpan.Zero) + TimeSpan.FromSeconds(1);
        Console.WriteLine($"| lag target: p99 ≤ settle + refresh p99 + 1 s = {bound.TotalMilliseconds:N0} ms | {(summary.LagP99 <= bound ? "met" : "MISSED")} |");
    }

    private static string Ms(TimeSpan? value) => value is { } v ? $"{v.TotalMilliseconds:N0} ms" : "—";

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
