using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/MatViewRefresh.Benchmarks -- coalescing</c>:
/// 1M requests over 10k keys from 2 threads, on the real clock and thread pool, then waits for every ticket;
/// reports requests per run (how much the debouncer coalesces) for a few settings.
/// </summary>
internal static class CoalescingReport
{
    public static async Task RunAsync()
    {
        Console.WriteLine("| settle delay | MaxWait | MinInterval | requests | keys | runs | requests per run | request phase | requests/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (delay, maxWait, minInterval) in new[]
        {
            (TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(20)),
            (TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(20)),
        })
        {
            var refresher = new NoOpRefresher();
            await using var services = NoOpRefresher.Services(
                o =>
                {
                    o.Debounce.DelayMin = delay;
                    o.Debounce.DelayMax = delay;
                    o.Debounce.MaxWait = maxWait;
                    o.Debounce.MinInterval = minInterval;
                },
                refresher);
            var debouncer = services.GetRequiredService<IRefreshDebouncer>();
            var target = RefreshTarget.View("public.mv");
            var keys = Enumerable.Range(0, 10_000).Select(i => "user-" + i).ToArray();
            var tickets = new Task<RefreshResult>[2][];
            var clock = Stopwatch.StartNew();
            Parallel.For(0, 2, thread =>
            {
                var mine = new List<Task<RefreshResult>>();
                for (var i = thread; i < 1_000_000; i += 2)
                {
                    var ticket = debouncer.Request(target, keys[i % keys.Length]);
                    if (!ticket.Joined)
                    {
                        mine.Add(ticket.Completion);
                    }
                }

                tickets[thread] = [.. mine];
            });
            var requestPhase = clock.Elapsed;
            await Task.WhenAll(tickets.SelectMany(t => t));
            Console.WriteLine(
                $"| {delay.TotalMilliseconds} ms | {maxWait.TotalMilliseconds} ms | {minInterval.TotalMilliseconds} ms | 1,000,000 | 10,000 | {refresher.Runs:N0} | {1_000_000.0 / refresher.Runs:N1} | {requestPhase.TotalMilliseconds:N0} ms | {1_000_000 / requestPhase.TotalSeconds:N0} |");
        }
    }
}
