namespace MatViewRefresh.Benchmarks;

/// <summary>A database with one materialized view, and a refresher on it: what the refresh benchmarks share (through <see cref="RefreshFixture"/>, as the overhead report does).</summary>
public abstract class RefreshBenchmarkBase
{
    private RefreshFixture _fixture = null!;

    /// <summary>The view refreshed.</summary>
    protected abstract BenchmarkView View { get; }

    // Synchronous on purpose: the in-process toolchain does not await asynchronous setup methods.
    [BenchmarkDotNet.Attributes.GlobalSetup]
    public void Setup() => _fixture = RefreshFixture.StartAsync([View]).GetAwaiter().GetResult();

    [BenchmarkDotNet.Attributes.GlobalCleanup]
    public void Cleanup() => _fixture.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>The baseline: a bare <c>REFRESH MATERIALIZED VIEW</c> through Npgsql.</summary>
    protected Task RawRefreshAsync() => _fixture.RawAsync(View);

    /// <summary><see cref="IMaterializedViewRefresher.RefreshAsync"/> of the view.</summary>
    protected Task<RefreshResult> LibraryRefreshAsync() => _fixture.LibraryAsync(View);

    /// <summary>The same work as separate statements in a transaction.</summary>
    protected Task NaiveRefreshAsync() => _fixture.NaiveAsync(View);
}
