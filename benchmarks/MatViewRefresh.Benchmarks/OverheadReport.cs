using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;

using static MatViewRefresh.Benchmarks.ReportText;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- overhead [options]</c>: the library's
/// overhead over a bare <c>REFRESH</c>, measured in paired, interleaved rounds on one throwaway PostgreSQL.
/// Each round runs raw <c>REFRESH</c>, <see cref="IMaterializedViewRefresher.RefreshAsync"/> and the naive
/// multi-statement version back to back, in an order rotated through all six permutations (so no method always goes
/// first or always follows the same one), each timed with <see cref="Stopwatch.GetTimestamp"/>. Reports per method the
/// median, p90 and mean; the median of the per-round differences to raw; the ratio of medians; allocated bytes per
/// operation (<see cref="GC.GetTotalAllocatedBytes"/>(precise) over a block of operations of one method run alone:
/// every thread, so continuations on thread-pool threads count); a latency histogram per method; and where the
/// library's time goes on the client (a no-op <see cref="IRefreshExecutor"/>; the executor timed in place) and on
/// the server (<c>pg_stat_statements</c>). Only public API is used, so it runs unchanged on any engine.
/// </summary>
internal static class OverheadReport
{
    private const string Usage = """
        overhead [--tiny-rounds N] [--large-rounds N] [--tiny-warmup N] [--warmup-seconds S] [--large-warmup N]
                 [--tiny-alloc-ops N] [--large-alloc-ops N] [--client-ops N] [--split-ops N] [--server-ops N]
                 [--bucket-ms X] [--no-large] [--no-server-breakdown]
        """;

    private static readonly string[] MethodNames = ["raw `REFRESH`", "`RefreshAsync`", "naive (separate statements)"];

    private static readonly int[][] Orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];

    public static async Task<int> RunAsync(string[] args)
    {
        Settings settings;
        try
        {
            settings = Settings.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message + Environment.NewLine + "usage: " + Usage);
            return 2;
        }

        var total = Stopwatch.StartNew();
        BenchmarkView[] views = settings.Large ? [BenchmarkView.Tiny, BenchmarkView.Large] : [BenchmarkView.Tiny];
        Console.Error.WriteLine("starting PostgreSQL and creating the views...");

        // pg_stat_statements is loaded but off (no query ids, nothing tracked) for every connection except those of
        // the server-side breakdown, which turn it on for themselves.
        var serverSettings = new Dictionary<string, string>
        {
            ["shared_preload_libraries"] = "pg_stat_statements",
            ["compute_query_id"] = "off",
            ["pg_stat_statements.track"] = "none",
        };
        await using var fixture = await RefreshFixture.StartAsync(views, settings.ServerBreakdown ? serverSettings : null);
        var machine = await MachineAsync(fixture.DataSource);

        var results = new List<ViewResult>();
        foreach (var view in views)
        {
            var tiny = view == BenchmarkView.Tiny;
            Console.Error.WriteLine($"{view}: warming up, then {(tiny ? settings.TinyRounds : settings.LargeRounds)} interleaved rounds...");
            results.Add(await MeasureViewAsync(
                fixture,
                view,
                tiny ? settings.TinyWarmup : settings.LargeWarmup,
                tiny ? TimeSpan.FromSeconds(settings.WarmupSeconds) : TimeSpan.Zero,
                tiny ? settings.TinyRounds : settings.LargeRounds,
                tiny ? settings.TinyAllocOps : settings.LargeAllocOps));
        }

        Console.Error.WriteLine("client-side cost: RefreshAsync with a no-op executor, and the real executor timed in place...");
        var client = await MeasureClientAsync(fixture, BenchmarkView.Tiny, settings.ClientOps);
        var split = await MeasureSplitAsync(fixture, BenchmarkView.Tiny, settings.SplitOps);
        ServerBreakdown? server = null;
        if (settings.ServerBreakdown)
        {
            Console.Error.WriteLine("server-side time per method (pg_stat_statements)...");
            server = await MeasureServerAsync(fixture, BenchmarkView.Tiny, settings.ServerOps);
        }

        Print(machine, settings, results, client, split, server, total.Elapsed);
        return 0;
    }

    private static async Task<ViewResult> MeasureViewAsync(RefreshFixture fixture, BenchmarkView view, int warmup, TimeSpan warmupTime, int rounds, int allocOps)
    {
        var methods = new Func<Task>[] { () => fixture.RawAsync(view), () => fixture.LibraryAsync(view), () => fixture.NaiveAsync(view) };
        var samples = new double[3][];
        for (var m = 0; m < 3; m++)
        {
            samples[m] = new double[rounds];
        }

        // A fresh server ran the same calls up to twice as slowly for its first 10-20 s (seen on the 2-core machine with
        // the CPU idle and its speed unchanged), so the warm-up lasts a minimum time as well as a minimum of rounds.
        var warmupClock = Stopwatch.StartNew();
        var warmupRounds = 0;
        while (warmupRounds < warmup || warmupClock.Elapsed < warmupTime)
        {
            foreach (var m in Orders[warmupRounds % Orders.Length])
            {
                await methods[m]();
            }

            warmupRounds++;
        }

        warmup = warmupRounds;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var previous = new int[3][];
        for (var m = 0; m < 3; m++)
        {
            previous[m] = new int[rounds];
        }

        var last = Orders[(warmup - 1 + Orders.Length) % Orders.Length][2];
        var chunks = Math.Min(10, rounds);
        var cpu = new CpuTimes[chunks + 1];
        var probe = new double[chunks];
        var chunk = 0;
        for (var round = 0; round < rounds; round++)
        {
            if (round == chunk * rounds / chunks)
            {
                probe[chunk] = CpuProbe();
                cpu[chunk++] = CpuTimes.Read();
            }

            foreach (var m in Orders[round % Orders.Length])
            {
                var started = Stopwatch.GetTimestamp();
                await methods[m]();
                samples[m][round] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                previous[m][round] = last;
                last = m;
            }
        }

        cpu[chunks] = CpuTimes.Read();
        var allocated = new double[3];
        var alone = new double[3];
        for (var m = 0; m < 3; m++)
        {
            (allocated[m], alone[m]) = await AllocatedPerOpAsync(methods[m], allocOps);
        }

        return new ViewResult(view, warmup, rounds, allocOps, samples, previous, allocated, alone, cpu, probe);
    }

    /// <summary>
    /// Bytes allocated by all threads per operation, and the mean wall time in ms, over <paramref name="ops"/>
    /// operations run one after another (after one unmeasured).
    /// </summary>
    private static async Task<(double Bytes, double Milliseconds)> AllocatedPerOpAsync(Func<Task> op, int ops)
    {
        await op();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < ops; i++)
        {
            await op();
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return ((GC.GetTotalAllocatedBytes(precise: true) - before) / (double)ops, elapsed / ops);
    }

    /// <summary>The fastest of 5 runs of a fixed piece of CPU work (hashing 64 KB), in µs: whether the CPU itself got faster or slower.</summary>
    private static double CpuProbe()
    {
        Span<byte> data = stackalloc byte[1024];
        Span<byte> hash = stackalloc byte[32];
        var best = double.MaxValue;
        for (var run = 0; run < 5; run++)
        {
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < 64; i++)
            {
                data[0] = (byte)i;
                System.Security.Cryptography.SHA256.HashData(data, hash);
            }

            best = Math.Min(best, Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        return best;
    }

    /// <summary>RefreshAsync through a real catalog and pipeline, but an executor that runs nothing: the library's own cost per call.</summary>
    private static async Task<ClientResult> MeasureClientAsync(RefreshFixture fixture, BenchmarkView view, int ops)
    {
        var executor = new NoOpExecutor();
        await using var services = RefreshFixture.BuildServices(
            fixture.DataSource,
            s =>
            {
                s.RemoveAll<IRefreshExecutor>();
                s.AddSingleton<IRefreshExecutor>(executor);
            });
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        for (var i = 0; i < Math.Max(2_000, ops / 5); i++)
        {
            await RefreshFixture.LibraryAsync(refresher, view);
        }

        var samples = new double[ops];
        var synchronous = 0;
        for (var i = 0; i < ops; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var task = RefreshFixture.LibraryAsync(refresher, view);
            if (task.IsCompleted)
            {
                synchronous++;
            }

            await task;
            samples[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds * 1000;
        }

        var (allocated, _) = await AllocatedPerOpAsync(() => RefreshFixture.LibraryAsync(refresher, view), ops);
        return new ClientResult(ops, samples, allocated, synchronous, executor.Calls, executor.LastCommand);
    }

    /// <summary>RefreshAsync with the registered executor wrapped in a timer: how much of each call is spent outside it.</summary>
    private static async Task<SplitResult?> MeasureSplitAsync(RefreshFixture fixture, BenchmarkView view, int ops)
    {
        TimingExecutor? timing = null;
        await using var services = RefreshFixture.BuildServices(
            fixture.DataSource,
            s =>
            {
                var registered = s.LastOrDefault(d => d.ServiceType == typeof(IRefreshExecutor));
                if (registered is null)
                {
                    return;
                }

                s.RemoveAll<IRefreshExecutor>();
                s.AddSingleton<IRefreshExecutor>(sp => timing = new TimingExecutor(
                    (IRefreshExecutor)(registered.ImplementationInstance
                        ?? registered.ImplementationFactory?.Invoke(sp)
                        ?? ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!))));
            });
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        for (var i = 0; i < 200; i++)
        {
            await RefreshFixture.LibraryAsync(refresher, view);
        }

        if (timing is null || timing.Calls == 0)
        {
            return null; // the engine does not go through IRefreshExecutor
        }

        // Paired with a raw REFRESH in each round (alternating which goes first), like the main measurement.
        var totals = new double[ops];
        var inside = new double[ops];
        var raw = new double[ops];
        for (var i = 0; i < ops; i++)
        {
            for (var step = 0; step < 2; step++)
            {
                var started = Stopwatch.GetTimestamp();
                if ((step + i) % 2 == 0)
                {
                    await fixture.RawAsync(view);
                    raw[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    continue;
                }

                var callsBefore = timing.Calls;
                timing.Elapsed = 0;
                await RefreshFixture.LibraryAsync(refresher, view);
                totals[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                inside[i] = timing.Elapsed;
                if (timing.Calls != callsBefore + 1)
                {
                    return null;
                }
            }
        }

        return new SplitResult(ops, totals, inside, raw);
    }

    /// <summary>Server execution time per operation of each method, run alone in blocks, from <c>pg_stat_statements</c>.</summary>
    private static async Task<ServerBreakdown?> MeasureServerAsync(RefreshFixture fixture, BenchmarkView view, int ops)
    {
        try
        {
            await using (var create = fixture.DataSource.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            {
                await create.ExecuteNonQueryAsync();
            }

            var tracked = new NpgsqlConnectionStringBuilder(fixture.ConnectionString)
            {
                Options = "-c compute_query_id=on -c pg_stat_statements.track=top -c pg_stat_statements.track_planning=on",
                ApplicationName = "overhead-server-breakdown",
            };
            await using var traced = await RefreshFixture.AttachAsync(tracked.ConnectionString, [view]);

            // Npgsql resets a pooled connection (DISCARD ALL, which includes DISCARD PLANS) before reusing it; without that,
            // PL/pgSQL keeps its plans across calls. The fourth method shows what the reset costs RefreshAsync.
            tracked.NoResetOnClose = true;
            await using var tracedNoReset = await RefreshFixture.AttachAsync(tracked.ConnectionString, [view]);
            var methods = new Func<Task>[]
            {
                () => traced.RawAsync(view), () => traced.LibraryAsync(view), () => traced.NaiveAsync(view), () => tracedNoReset.LibraryAsync(view),
            };
            var perOp = new double[methods.Length];
            var statementsPerOp = new double[methods.Length];
            var blockMs = new double[methods.Length];
            var statements = methods.Select(_ => new List<(string, double, double)>()).ToArray();
            for (var m = 0; m < methods.Length; m++)
            {
                for (var i = 0; i < 50; i++)
                {
                    await methods[m]();
                }

                await using (var reset = fixture.DataSource.CreateCommand("SELECT pg_stat_statements_reset()"))
                {
                    await reset.ExecuteNonQueryAsync();
                }

                var started = Stopwatch.GetTimestamp();
                for (var i = 0; i < ops; i++)
                {
                    await methods[m]();
                }

                blockMs[m] = Stopwatch.GetElapsedTime(started).TotalMilliseconds / ops;
                await using var read = fixture.DataSource.CreateCommand("""
                    SELECT query, (total_exec_time + total_plan_time)::float8, calls::float8
                      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND query NOT ILIKE '%pg_stat_statements%'
                     ORDER BY 2 DESC
                    """);
                await using var reader = await read.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    perOp[m] += reader.GetDouble(1) / ops;
                    statementsPerOp[m] += reader.GetDouble(2) / ops;
                    statements[m].Add((reader.GetString(0), reader.GetDouble(1) / ops, reader.GetDouble(2) / ops));
                }
            }

            return new ServerBreakdown(ops, perOp, statementsPerOp, blockMs, statements);
        }
        catch (PostgresException e)
        {
            Console.Error.WriteLine($"no server-side breakdown: {e.MessageText}");
            return null;
        }
    }

    private static void Print(Machine machine, Settings settings, List<ViewResult> results, ClientResult client, SplitResult? split, ServerBreakdown? server, TimeSpan elapsed)
    {
        var o = new StringBuilder();
        o.AppendLine(CultureInfo.InvariantCulture, $"## Refresh overhead ({machine.Date})");
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine.Cores} cores, {machine.Cpu}; PostgreSQL {machine.Postgres} (throwaway, `fsync=off`, local TCP); {machine.Dotnet}; Npgsql {machine.Npgsql}; commit {machine.Commit}.");
        o.AppendLine("Paired, interleaved rounds: each round runs the three methods back to back, the order rotated through all six permutations; each call timed with `Stopwatch.GetTimestamp`.");
        o.AppendLine("Δ = median over rounds of (method − raw) in the same round. Allocated = `GC.GetTotalAllocatedBytes(precise: true)` delta over a block of calls of one method alone, per call (all threads).");
        o.AppendLine(CultureInfo.InvariantCulture, $"Load average (1, 5, 15 min) at the start: {machine.LoadAtStart}; at the end: {LoadAverage()} — more than the core count means other work competed for the CPUs and the figures are inflated.");
        o.AppendLine(CultureInfo.InvariantCulture, $"Whole report: {elapsed.TotalSeconds:0} s. Command: `dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- overhead {settings}`.");
        foreach (var result in results)
        {
            PrintView(o, result);
        }

        PrintGoals(o, results);
        PrintClient(o, results[0], client, split, server);
        foreach (var result in results)
        {
            PrintHistograms(o, result, settings.BucketMs);
        }

        Console.Write(o.ToString());
    }

    private static void PrintView(StringBuilder o, ViewResult r)
    {
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"**{r.View.Label}**: {r.Rounds} rounds after {r.Warmup:N0} warm-up rounds; allocations over {r.AllocOps} calls per method.");
        o.AppendLine();
        o.AppendLine("| method | median | p90 | mean | Δ vs raw (median, paired) | ratio of medians | allocated |");
        o.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        var rawMedian = Stats.Median(r.Samples[0]);
        for (var m = 0; m < 3; m++)
        {
            var s = r.Samples[m];
            var delta = m == 0 ? "—" : Signed(Stats.Median(Stats.Differences(s, r.Samples[0]))) + " ms";
            o.AppendLine(CultureInfo.InvariantCulture, $"| {MethodNames[m]} | {Ms(Stats.Median(s))} | {Ms(Stats.Percentile(s, 0.9))} | {Ms(s.Average())} | {delta} | {Stats.Median(s) / rawMedian:0.00} | {Bytes(r.Allocated[m])} |");
        }

        var chunks = Math.Min(10, r.Rounds);
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"Median per {chunks}th of the run, in order (a slow mode that comes and goes with time is outside load, one in every part is per call):");
        o.AppendLine();
        o.AppendLine("| method | " + string.Join(" | ", Enumerable.Range(1, chunks)) + " |");
        o.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", chunks)));
        for (var m = 0; m < 3; m++)
        {
            var parts = Enumerable.Range(0, chunks).Select(c =>
            {
                var from = c * r.Rounds / chunks;
                var to = (c + 1) * r.Rounds / chunks;
                return Stats.Median(r.Samples[m][from..to]).ToString("0.000", CultureInfo.InvariantCulture);
            });
            o.AppendLine(CultureInfo.InvariantCulture, $"| {MethodNames[m]} | {string.Join(" | ", parts)} |");
        }

        if (r.Cpu.All(c => c.Total > 0))
        {
            // The whole machine's CPU (/proc/stat): this process and PostgreSQL take about one core; more is other work, steal is the hypervisor's.
            var busy = Enumerable.Range(0, chunks).Select(c => CpuTimes.BusyCores(r.Cpu[c], r.Cpu[c + 1]).ToString("0.00", CultureInfo.InvariantCulture));
            var steal = Enumerable.Range(0, chunks).Select(c => CpuTimes.StealPercent(r.Cpu[c], r.Cpu[c + 1]).ToString("0.0", CultureInfo.InvariantCulture) + " %");
            o.AppendLine(CultureInfo.InvariantCulture, $"| cores busy (whole machine, of {Environment.ProcessorCount}) | {string.Join(" | ", busy)} |");
            o.AppendLine(CultureInfo.InvariantCulture, $"| CPU steal | {string.Join(" | ", steal)} |");
            o.AppendLine(CultureInfo.InvariantCulture, $"| fixed CPU work, µs (the client's CPU speed) | {string.Join(" | ", r.Probe.Select(p => p.ToString("0", CultureInfo.InvariantCulture)))} |");
        }

        o.AppendLine();
        o.AppendLine("Median by the method that ran just before (interference between methods), and the mean per call when run alone (the allocation block):");
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"| method | after {MethodNames[0]} | after {MethodNames[1]} | after {MethodNames[2]} | alone, {r.AllocOps} calls in a row (mean) |");
        o.AppendLine("| --- | ---: | ---: | ---: | ---: |");
        for (var m = 0; m < 3; m++)
        {
            var cells = new string[3];
            for (var before = 0; before < 3; before++)
            {
                var picked = r.Samples[m].Where((_, i) => r.Previous[m][i] == before).ToArray();
                cells[before] = picked.Length == 0 ? "—" : $"{Ms(Stats.Median(picked))} (n={picked.Length})";
            }

            o.AppendLine(CultureInfo.InvariantCulture, $"| {MethodNames[m]} | {cells[0]} | {cells[1]} | {cells[2]} | {Ms(r.Alone[m])} |");
        }
    }

    private static void PrintGoals(StringBuilder o, List<ViewResult> results)
    {
        o.AppendLine();
        o.AppendLine("Goal checks:");
        var tiny = results[0];
        var libraryOverRaw = Stats.Median(Stats.Differences(tiny.Samples[1], tiny.Samples[0]));
        var naiveOverRaw = Stats.Median(Stats.Differences(tiny.Samples[2], tiny.Samples[0]));
        var libraryOverNaive = Stats.Differences(tiny.Samples[1], tiny.Samples[2]);
        var below = libraryOverNaive.Count(d => d < 0) / (double)libraryOverNaive.Length;
        o.AppendLine(CultureInfo.InvariantCulture, $"- tiny view, `RefreshAsync` − raw = {Signed(libraryOverRaw)} ms (goal ≤ 0.30 ms): {(libraryOverRaw <= 0.30 ? "met" : "NOT met")}");
        o.AppendLine(CultureInfo.InvariantCulture, $"- tiny view, `RefreshAsync` − naive = {Signed(Stats.Median(libraryOverNaive))} ms (paired median; IQR {Signed(Stats.Percentile(libraryOverNaive, 0.25))} to {Signed(Stats.Percentile(libraryOverNaive, 0.75))} ms; `RefreshAsync` faster in {below:P0} of rounds); naive − raw = {Signed(naiveOverRaw)} ms");
        if (results.Count > 1)
        {
            var large = results[1];
            var ratio = Stats.Median(large.Samples[1]) / Stats.Median(large.Samples[0]);
            var pairedRatio = Stats.Median([.. large.Samples[1].Zip(large.Samples[0], (a, b) => a / b)]);
            o.AppendLine(CultureInfo.InvariantCulture, $"- 200k-row view, `RefreshAsync` / raw = {ratio:0.000} (ratio of medians; median of paired ratios {pairedRatio:0.000}; goal ≤ 1.02): {(ratio <= 1.02 ? "met" : "NOT met")}");
        }
    }

    private static void PrintClient(StringBuilder o, ViewResult tiny, ClientResult client, SplitResult? split, ServerBreakdown? server)
    {
        o.AppendLine();
        o.AppendLine("**Where `RefreshAsync`'s extra time goes** (tiny view):");
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"- Library alone (real catalog cache, pipeline, SQL building, telemetry, logging; an `IRefreshExecutor` that runs nothing): median {Stats.Median(client.Samples):0.0} µs, p90 {Stats.Percentile(client.Samples, 0.9):0.0} µs, mean {client.Samples.Average():0.0} µs per call over {client.Ops:N0} calls; {Bytes(client.Allocated)} allocated per call; {client.Synchronous / (double)client.Ops:P0} completed synchronously.");
        if (client.LastCommand is { } command)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"  The command it gets: {command.Statements.Count} statements, {command.Statements.Sum(s => s.Parameters.Count)} parameters, one executor call per refresh ({client.Calls:N0} calls).");
        }

        if (split is not null)
        {
            var outside = Stats.Differences(split.Totals, split.Inside);
            o.AppendLine(CultureInfo.InvariantCulture, $"- The registered executor timed in place ({split.Ops} rounds of `RefreshAsync` paired with a raw `REFRESH`): `RefreshAsync` median {Ms(Stats.Median(split.Totals))}, of which inside `IRefreshExecutor.ExecuteAsync` median {Ms(Stats.Median(split.Inside))} (Npgsql batch + network + server) and outside it median {Stats.Median(outside) * 1000:0.0} µs (p90 {Stats.Percentile(outside, 0.9) * 1000:0.0} µs); raw `REFRESH` median {Ms(Stats.Median(split.Raw))}.");
            o.AppendLine(CultureInfo.InvariantCulture, $"  Paired medians: `RefreshAsync` − raw {Signed(Stats.Median(Stats.Differences(split.Totals, split.Raw)))} ms; inside the executor − raw {Signed(Stats.Median(Stats.Differences(split.Inside, split.Raw)))} ms.");
        }
        else
        {
            o.AppendLine("- The executor could not be timed in place: this engine does not run refreshes through one `IRefreshExecutor` call.");
        }

        if (server is not null)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"- Server execution time per call (`pg_stat_statements` exec + plan time of top-level statements, {server.Ops} calls per method in blocks; the commit of an implicit transaction is not in it):");
            for (var m = 0; m < server.PerOp.Length; m++)
            {
                var name = m < 3 ? MethodNames[m] : "`RefreshAsync` on a data source with `No Reset On Close=true` (no `DISCARD ALL`)";
                o.AppendLine(CultureInfo.InvariantCulture, $"  {name}: {Ms(server.PerOp[m])} in {server.StatementsPerOp[m]:0.##} statements; wall time in this block {Ms(server.BlockMs[m])} per call, so {Ms(server.BlockMs[m] - server.PerOp[m])} outside statement execution.");
                foreach (var (query, ms, calls) in server.Statements[m])
                {
                    var text = string.Join(' ', query.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
                    o.AppendLine(CultureInfo.InvariantCulture, $"    - {ms * 1000,7:0.0} µs, {calls:0.##}× `{(text.Length > 90 ? text[..90] + "…" : text)}`");
                }
            }
        }
    }

    private static void PrintHistograms(StringBuilder o, ViewResult r, double? bucketMs)
    {
        var names = MethodNames.Select(n => n.Replace("`", string.Empty, StringComparison.Ordinal)).ToArray();
        Histogram(o, $"Latency histograms, {r.View.Label}", [.. Enumerable.Range(0, 3).Select(m => ($"{names[m]} (median {Ms(Stats.Median(r.Samples[m]))})", r.Samples[m]))], bucketMs);

        // A slow mode shared by every method (load, the server) cancels out of the per-round differences; one of the method's own does not.
        var differences = new[] { Stats.Differences(r.Samples[1], r.Samples[0]), Stats.Differences(r.Samples[2], r.Samples[0]) };
        Histogram(
            o,
            $"Histograms of the per-round differences to raw, {r.View.Label}",
            [($"{names[1]} − raw (median {Signed(Stats.Median(differences[0]))} ms)", differences[0]), ($"{names[2]} − raw (median {Signed(Stats.Median(differences[1]))} ms)", differences[1])],
            bucketMs);
    }

    private static void Histogram(StringBuilder o, string title, (string Name, double[] Values)[] series, double? bucketMs)
    {
        var all = series.SelectMany(s => s.Values).ToArray();
        var low = Stats.Percentile(all, 0.01);
        var high = Stats.Percentile(all, 0.98);
        var width = bucketMs ?? NiceWidth((high - low) / 40); // 0.1 ms unless that makes more than 40 buckets
        var start = Math.Floor(low / width) * width;
        var buckets = (int)Math.Ceiling((high - start) / width) + 1;
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"{title} ({width:0.###} ms buckets; calls per bucket; below {Ms(start)} and from {Ms(start + ((buckets - 1) * width))} up folded into the first and last):");
        o.AppendLine();
        o.AppendLine("```text");
        foreach (var (name, values) in series)
        {
            var counts = new int[buckets];
            foreach (var x in values)
            {
                counts[Math.Clamp((int)Math.Floor((x - start) / width), 0, buckets - 1)]++;
            }

            var max = counts.Max();
            o.AppendLine(name);
            var first = Array.FindIndex(counts, c => c > 0);
            var last = Array.FindLastIndex(counts, c => c > 0);
            for (var b = first; b <= last; b++)
            {
                var bar = new string('#', (int)Math.Round(counts[b] * 50.0 / max));
                o.AppendLine(CultureInfo.InvariantCulture, $"  {start + (b * width),8:0.000} ms {counts[b],6} {bar}");
            }
        }

        o.AppendLine("```");
    }

    private static double NiceWidth(double raw)
    {
        foreach (var w in new[] { 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10 })
        {
            if (w >= raw)
            {
                return w;
            }
        }

        return 20;
    }

    private static async Task<Machine> MachineAsync(NpgsqlDataSource dataSource)
    {
        var cpu = "unknown CPU";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException)
        {
        }

        await using var version = dataSource.CreateCommand("SHOW server_version");
        var postgres = (string)(await version.ExecuteScalarAsync())!;
        var commit = "unknown";
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (git is not null)
            {
                var output = (await git.StandardOutput.ReadToEndAsync()).Trim();
                await git.WaitForExitAsync();
                commit = git.ExitCode == 0 ? output : commit;
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }

        return new Machine(
            DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            Environment.ProcessorCount,
            cpu,
            postgres,
            RuntimeInformation.FrameworkDescription,
            typeof(NpgsqlConnection).Assembly.GetName().Version?.ToString(3) ?? "?",
            commit,
            LoadAverage());
    }

    private static string Bytes(double bytes) => bytes >= 1024
        ? (bytes / 1024).ToString("0.0", CultureInfo.InvariantCulture) + " KB"
        : bytes.ToString("0", CultureInfo.InvariantCulture) + " B";

    /// <summary>The aggregate <c>cpu</c> line of <c>/proc/stat</c>, in clock ticks; zero where it cannot be read.</summary>
    private readonly record struct CpuTimes(long Total, long Idle, long Steal)
    {
        public static CpuTimes Read()
        {
            try
            {
                var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
                    .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
                return new CpuTimes(fields.Sum(), fields[3] + fields[4], fields.Length > 7 ? fields[7] : 0);
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException or IndexOutOfRangeException)
            {
                return default;
            }
        }

        public static double BusyCores(CpuTimes from, CpuTimes to) =>
            to.Total == from.Total ? 0 : Environment.ProcessorCount * (1 - ((to.Idle - from.Idle) / (double)(to.Total - from.Total)));

        public static double StealPercent(CpuTimes from, CpuTimes to) =>
            to.Total == from.Total ? 0 : 100.0 * (to.Steal - from.Steal) / (to.Total - from.Total);
    }

    private sealed record Machine(string Date, int Cores, string Cpu, string Postgres, string Dotnet, string Npgsql, string Commit, string LoadAtStart);

    /// <param name="Previous">For each method and round, the method that ran just before it.</param>
    /// <param name="Alone">Mean ms per call over the allocation block, where the method ran alone.</param>
    /// <param name="Cpu">The machine's CPU counters at the start of each tenth of the rounds, and at the end.</param>
    /// <param name="Probe">µs of a fixed piece of CPU work (<see cref="CpuProbe"/>) at the start of each tenth.</param>
    private sealed record ViewResult(BenchmarkView View, int Warmup, int Rounds, int AllocOps, double[][] Samples, int[][] Previous, double[] Allocated, double[] Alone, CpuTimes[] Cpu, double[] Probe);

    private sealed record ClientResult(int Ops, double[] Samples, double Allocated, int Synchronous, long Calls, RefreshCommand? LastCommand);

    private sealed record SplitResult(int Ops, double[] Totals, double[] Inside, double[] Raw);

    private sealed record ServerBreakdown(int Ops, double[] PerOp, double[] StatementsPerOp, double[] BlockMs, List<(string Query, double MsPerOp, double CallsPerOp)>[] Statements);

    private sealed class NoOpExecutor : IRefreshExecutor
    {
        private static readonly Task<RefreshExecution> Done = Task.FromResult(RefreshExecution.Empty);
        private long _calls;

        public long Calls => Interlocked.Read(ref _calls);

        public RefreshCommand? LastCommand { get; private set; }

        public Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            LastCommand = command;
            return Done;
        }
    }

    /// <summary>Times the executor it wraps; <see cref="Elapsed"/> adds up milliseconds spent in it.</summary>
    private sealed class TimingExecutor(IRefreshExecutor inner) : IRefreshExecutor
    {
        public long Calls { get; private set; }

        public double Elapsed { get; set; }

        public async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
        {
            Calls++;
            var started = Stopwatch.GetTimestamp();
            try
            {
                return await inner.ExecuteAsync(command, cancellationToken);
            }
            finally
            {
                Elapsed += Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }
    }

    private sealed record Settings(
        int TinyRounds, int LargeRounds, int TinyWarmup, int LargeWarmup, int TinyAllocOps, int LargeAllocOps,
        int ClientOps, int SplitOps, int ServerOps, double? BucketMs, bool Large, bool ServerBreakdown, double WarmupSeconds)
    {
        public static Settings Parse(string[] args)
        {
            var s = new Settings(2000, 30, 300, 3, 300, 5, 20_000, 500, 300, null, true, true, 20);
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                int Count()
                {
                    var name = args[i];
                    return int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                        ? n
                        : throw new ArgumentException($"{name} needs a positive whole number.");
                }

                s = args[i] switch
                {
                    "--tiny-rounds" => s with { TinyRounds = Count() },
                    "--large-rounds" => s with { LargeRounds = Count() },
                    "--tiny-warmup" => s with { TinyWarmup = Count() },
                    "--large-warmup" => s with { LargeWarmup = Count() },
                    "--tiny-alloc-ops" => s with { TinyAllocOps = Count() },
                    "--large-alloc-ops" => s with { LargeAllocOps = Count() },
                    "--client-ops" => s with { ClientOps = Count() },
                    "--split-ops" => s with { SplitOps = Count() },
                    "--server-ops" => s with { ServerOps = Count() },
                    "--bucket-ms" => s with
                    {
                        BucketMs = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var w) && w > 0
                            ? w
                            : throw new ArgumentException("--bucket-ms needs a positive number."),
                    },
                    "--warmup-seconds" => s with
                    {
                        WarmupSeconds = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var t) && t >= 0
                            ? t
                            : throw new ArgumentException("--warmup-seconds needs a number, 0 or more."),
                    },
                    "--no-large" => s with { Large = false },
                    "--no-server-breakdown" => s with { ServerBreakdown = false },
                    _ => throw new ArgumentException($"Unknown option {args[i]}."),
                };
            }

            return s;
        }

        public override string ToString() => string.Create(
            CultureInfo.InvariantCulture,
            $"--tiny-rounds {TinyRounds} --large-rounds {LargeRounds} --tiny-warmup {TinyWarmup} --warmup-seconds {WarmupSeconds} --large-warmup {LargeWarmup}{(Large ? string.Empty : " --no-large")}{(ServerBreakdown ? string.Empty : " --no-server-breakdown")}");
    }

    private static class Stats
    {
        public static double Median(double[] values) => Percentile(values, 0.5);

        /// <summary>Linear interpolation between closest ranks.</summary>
        public static double Percentile(double[] values, double p)
        {
            var sorted = values.Order().ToArray();
            if (sorted.Length == 0)
            {
                return double.NaN;
            }

            var rank = p * (sorted.Length - 1);
            var below = (int)Math.Floor(rank);
            var above = Math.Min(below + 1, sorted.Length - 1);
            return sorted[below] + ((rank - below) * (sorted[above] - sorted[below]));
        }

        public static double[] Differences(double[] a, double[] b) => [.. a.Zip(b, (x, y) => x - y)];
    }
}
