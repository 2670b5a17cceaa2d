using BenchmarkDotNet.Attributes;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// What <see cref="IRefreshQueue.EnqueueAsync(RefreshTarget, NpgsqlTransaction, CancellationToken)"/> adds to the caller's
/// 1-row insert transaction (BEGIN; INSERT; COMMIT on a pooled connection), without and with NOTIFY. No worker runs.
/// </summary>
[MemoryDiagnoser]
[InProcess]
public class QueueBenchmarks
{
    private ThrowawayPostgres? _server;
    private NpgsqlDataSource _dataSource = null!;
    private ServiceProvider _plain = null!;
    private ServiceProvider _notify = null!;
    private IRefreshQueue _queue = null!;
    private IRefreshQueue _notifyQueue = null!;
    private readonly int[] _key = [42];

    [GlobalSetup]
    public void Setup()
    {
        (_server, var connectionString) = BenchmarkDatabase.StartAsync().GetAwaiter().GetResult();
        _dataSource = NpgsqlDataSource.Create(connectionString);
        using (var command = _dataSource.CreateCommand(QueueBench.Schema))
        {
            command.ExecuteNonQuery();
        }

        _plain = QueueBench.Instance(connectionString, notify: false);
        _notify = QueueBench.Instance(connectionString, notify: true);
        _queue = _plain.GetRequiredService<IRefreshQueue>();
        _notifyQueue = _notify.GetRequiredService<IRefreshQueue>();
        _plain.GetRequiredService<IRefreshLog>().EnsureSchemaAsync().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain.Dispose();
        _notify.Dispose();
        _dataSource.Dispose();
        _server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, Description = "1-row insert transaction")]
    public Task InsertOnly() => QueueBench.WriteAsync(_dataSource, null, _key, 1);

    [Benchmark(Description = "same + EnqueueAsync")]
    public Task InsertAndEnqueue() => QueueBench.WriteAsync(_dataSource, _queue, _key, 1);

    [Benchmark(Description = "same + EnqueueAsync with NOTIFY")]
    public Task InsertAndEnqueueWithNotify() => QueueBench.WriteAsync(_dataSource, _notifyQueue, _key, 1);
}
