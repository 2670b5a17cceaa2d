using BenchmarkDotNet.Attributes;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The same comparison as <see cref="RefreshBenchmarks"/> on a view with real work in it (200,000 source rows
/// aggregated into 1,000): the library's cost is the same absolute amount, so the ratio shows what it weighs in practice.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class RefreshLargerViewBenchmarks : RefreshBenchmarkBase
{
    protected override BenchmarkView View => BenchmarkView.Large;

    [Benchmark(Baseline = true, Description = "raw Npgsql REFRESH (200k rows -> 1k)")]
    public Task Raw() => RawRefreshAsync();

    [Benchmark(Description = "RefreshAsync (200k rows -> 1k)")]
    public Task<RefreshResult> Library() => LibraryRefreshAsync();
}
