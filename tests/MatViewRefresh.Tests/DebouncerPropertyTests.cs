using MatViewRefresh.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace MatViewRefresh.Tests;

/// <summary>
/// Hundreds of random request timelines on the fake clock, checked against the debounce guarantees:
/// (a) every request is followed by a run of its key that starts after it, no later than MaxWait plus the
/// remaining time of a run in progress when it arrived; (b) runs of one key never overlap and start at least
/// MinInterval apart; (c) no run without a request since the previous run started — so N requests during one
/// run give at most one extra run.
/// </summary>
public sealed class DebouncerPropertyTests
{
    private sealed record Request(string Key, DateTimeOffset At, long Sequence);

    [Theory]
    [InlineData(1, 1.5, 2, 30, 20)]
    [InlineData(2, 1.5, 2, 30, 20)]
    [InlineData(3, 0.1, 0.5, 5, 2)]
    [InlineData(4, 1, 3, 10, 10)]
    [InlineData(5, 0, 0, 3, 0)]
    public void Random_timelines_keep_every_guarantee(int seed, double delayMin, double delayMax, double maxWait, double minInterval)
    {
        for (var timeline = 0; timeline < 60; timeline++)
        {
            Check(new Random(seed * 1000 + timeline), delayMin, delayMax, maxWait, minInterval);
        }
    }

    private static void Check(Random random, double delayMin, double delayMax, double maxWait, double minInterval)
    {
        var clock = new SteppingClock(TestClock.Start);
        var start = clock.GetUtcNow();
        var refresher = new FakeRefresher(clock)
        {
            // Runs from instant to longer than MaxWait.
            Duration = _ => TimeSpan.FromSeconds(random.NextDouble() < 0.3 ? 0 : random.NextDouble() * maxWait * 1.5),
        };
        var options = new MatViewRefreshOptions { Randomizer = random.NextDouble };
        options.Debounce.DelayMin = TimeSpan.FromSeconds(delayMin);
        options.Debounce.DelayMax = TimeSpan.FromSeconds(delayMax);
        options.Debounce.MaxWait = TimeSpan.FromSeconds(maxWait);
        options.Debounce.MinInterval = TimeSpan.FromSeconds(minInterval);
        var debouncer = TestDebouncer.Create(refresher, new InlineRefreshTaskFactory(), clock, options, NullLogger<RefreshDebouncer>.Instance);

        var keys = new[] { "a", "b", "c" }.Take(random.Next(1, 4)).ToArray();
        var requests = new List<Request>();
        var now = 0.0;
        for (var i = random.Next(1, 80); i > 0; i--)
        {
            // Bursts, pauses and long gaps.
            now += random.NextDouble() switch
            {
                < 0.5 => random.NextDouble() * 0.5,
                < 0.8 => random.NextDouble() * 5,
                < 0.95 => random.NextDouble() * 30,
                _ => random.NextDouble() * 120,
            };
            clock.RunTo(start + TimeSpan.FromSeconds(now));
            var key = keys[random.Next(keys.Length)];
            requests.Add(new Request(key, clock.GetUtcNow(), refresher.NextSequence()));
            debouncer.Request(RefreshTarget.View("public." + key), key);
        }

        clock.Advance(TimeSpan.FromHours(2));
        var context = $"(timeline of {requests.Count} requests over {keys.Length} keys)";
        Assert.All(refresher.Runs, r => Assert.NotNull(r.End));

        foreach (var key in keys)
        {
            var runs = refresher.Runs.Where(r => r.Target.Name.Name == key).OrderBy(r => r.Sequence).ToList();
            var mine = requests.Where(r => r.Key == key).ToList();

            // (a) covered, in time.
            foreach (var request in mine)
            {
                var inProgress = runs.LastOrDefault(r => r.Sequence < request.Sequence && r.End > request.At);
                var remaining = inProgress is null ? TimeSpan.Zero : inProgress.End!.Value - request.At;
                var covering = runs.FirstOrDefault(r => r.Sequence > request.Sequence);
                Assert.True(covering is not null, $"request at {request.At - start} on {key} never got a run {context}");
                Assert.True(
                    covering.Start <= request.At + TimeSpan.FromSeconds(maxWait) + remaining,
                    $"request at {request.At - start} on {key} ran at {covering.Start - start}, later than MaxWait {maxWait} s + {remaining} {context}");
            }

            for (var i = 1; i < runs.Count; i++)
            {
                // (b) no overlap, MinInterval apart.
                Assert.True(runs[i - 1].End <= runs[i].Start, $"runs of {key} overlap {context}");
                Assert.True(runs[i].Start - runs[i - 1].Start >= TimeSpan.FromSeconds(minInterval), $"runs of {key} closer than MinInterval {context}");

                // (c) every run is owed to a request that arrived after the previous run started.
                Assert.Contains(mine, r => r.Sequence > runs[i - 1].Sequence && r.Sequence < runs[i].Sequence);
            }

            if (runs.Count > 0)
            {
                Assert.Contains(mine, r => r.Sequence < runs[0].Sequence);
            }
        }

        Assert.Equal(0, debouncer.KeyCount);
    }
}
