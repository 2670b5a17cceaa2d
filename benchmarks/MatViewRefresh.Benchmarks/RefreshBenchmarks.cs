using BenchmarkDotNet.Attributes;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The cost of the library around a refresh: advisory lock, timeouts, refresh log upsert and history insert,
/// all in one round trip, against a bare <c>REFRESH MATERIALIZED VIEW</c> of the same tiny view.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class RefreshBenchmarks : RefreshBenchmarkBase
{
    protected override BenchmarkView View => BenchmarkView.Tiny;

    [Benchmark(Baseline = true, Description = "raw Npgsql REFRESH")]
    public Task Raw() => RawRefreshAsync();

    [Benchmark(Description = "RefreshAsync (lock + log, one round trip)")]
    public Task<RefreshResult> Library() => LibraryRefreshAsync();

    [Benchmark(Description = "naive: separate statements in a transaction")]
    public Task Naive() => NaiveRefreshAsync();
}
