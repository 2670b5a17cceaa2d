using BenchmarkDotNet.Attributes;
using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The cost the capture triggers add to a writer: a 1-row INSERT and a 1,000-row batch INSERT (3 days) into a watched
/// table against the same into an identical unwatched one, each its own transaction, on a throwaway PostgreSQL.
/// </summary>
[InProcess]
public class CaptureBenchmarks
{
    private ThrowawayPostgres? _server;
    private NpgsqlDataSource _dataSource = null!;
    private CaptureSetup _setup = null!;
    private int _calls;

    // Synchronous on purpose: the in-process toolchain does not await asynchronous setup methods.
    [GlobalSetup]
    public void Setup()
    {
        var (server, connectionString) = BenchmarkDatabase.StartAsync().GetAwaiter().GetResult();
        _server = server;
        _dataSource = NpgsqlDataSource.Create(connectionString);
        _setup = CaptureSetup.CreateAsync(_dataSource).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _setup.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _dataSource.Dispose();
        _server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, Description = "1-row INSERT, unwatched")]
    public Task InsertOneUnwatched() => _setup.InsertOneAsync("capture.unwatched");

    [Benchmark(Description = "1-row INSERT, watched")]
    public Task InsertOneWatched() => ClearNowAndThen(_setup.InsertOneAsync("capture.watched"));

    [Benchmark(Description = "1,000-row INSERT (3 days), unwatched")]
    public Task InsertBatchUnwatched() => _setup.InsertBatchAsync("capture.unwatched");

    [Benchmark(Description = "1,000-row INSERT (3 days), watched")]
    public Task InsertBatchWatched() => ClearNowAndThen(_setup.InsertBatchAsync("capture.watched"));

    /// <summary>Keeps the request table small, as a worker would (every 10,000th call, outside nothing: the cost is amortized).</summary>
    private async Task ClearNowAndThen(Task insert)
    {
        await insert;
        if (++_calls % 10_000 == 0)
        {
            await _setup.ClearRequestsAsync();
        }
    }
}
