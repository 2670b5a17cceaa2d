using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The cost of <see cref="IRefreshDebouncer.Request"/> on the ingest hot path. The refresher behind it is a no-op:
/// what is measured is the debouncer's own bookkeeping.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class DebounceBenchmarks
{
    private ServiceProvider _services = null!;
    private IRefreshDebouncer _debouncer = null!;
    private readonly RefreshTarget _target = RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", Guid.Parse("e20a3e9e-1fc2-41ad-b6f7-656668310d13")), ("day_local", new DateOnly(2025, 11, 8)));
    private string _key = null!;
    private string _defaultKey = null!;
    private string[] _keys = null!;

    [GlobalSetup]
    public void Setup()
    {
        _services = NoOpRefresher.Services(o =>
        {
            // Long enough that the pending run never starts during the measurement.
            o.Debounce.DelayMin = TimeSpan.FromHours(1);
            o.Debounce.DelayMax = TimeSpan.FromHours(1);
            o.Debounce.MaxWait = TimeSpan.FromHours(2);
        });
        _debouncer = _services.GetRequiredService<IRefreshDebouncer>();
        _key = "e20a3e9e-1fc2-41ad-b6f7-656668310d13:2025-11-08"; // user:day, as an ingest endpoint would key it
        _defaultKey = _target.ToString();
        _keys = [.. Enumerable.Range(0, 10_000).Select(i => "user-" + i)];
        _debouncer.Request(_target, _key);
        _debouncer.Request(_target);
        foreach (var key in _keys)
        {
            _debouncer.Request(_target, key);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "Request on an already-pending key (user:day)")]
    public RefreshTicket RequestPendingKey() => _debouncer.Request(_target, _key);

    [Benchmark(Description = "Request on an already-pending key (default: the target's 90-char text)")]
    public RefreshTicket RequestPendingDefaultKey() => _debouncer.Request(_target);

    [Benchmark(OperationsPerInvoke = 1_000_000, Description = "1M requests over 10k pending keys, 2 threads (per request)")]
    public void TwoThreadsOverTenThousandKeys()
    {
        var keys = _keys;
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, thread =>
        {
            for (var i = thread; i < 1_000_000; i += 2)
            {
                _debouncer.Request(_target, keys[i % keys.Length]);
            }
        });
    }
}
