using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// The durable queue's benchmark database: <c>bench_q.src</c> (the data), <c>bench_q.mart</c> (one row per key, its count and sum of
/// <c>src</c>), and <c>bench_q.refresh_key(k)</c>, the function target that recomputes one key.
/// </summary>
internal static class QueueBench
{
    public const string Schema = """
        CREATE SCHEMA IF NOT EXISTS bench_q;
        CREATE TABLE IF NOT EXISTS bench_q.src (k int NOT NULL, v int NOT NULL);
        CREATE INDEX IF NOT EXISTS src_k ON bench_q.src (k);
        CREATE TABLE IF NOT EXISTS bench_q.mart (k int PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL);
        CREATE OR REPLACE FUNCTION bench_q.refresh_key(k int) RETURNS void LANGUAGE sql AS $$
            INSERT INTO bench_q.mart AS m (k, n, total)
            SELECT refresh_key.k, count(*), coalesce(sum(s.v), 0) FROM bench_q.src s WHERE s.k = refresh_key.k
            ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total
        $$;
        """;

    /// <summary>The same function in PL/pgSQL: its statement's plan is cached per session (an SQL-language function's is made again on every call).</summary>
    public const string PlpgsqlFunction = """
        CREATE OR REPLACE FUNCTION bench_q.refresh_key(k int) RETURNS void LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
            INSERT INTO bench_q.mart AS m (k, n, total)
            SELECT refresh_key.k, count(*), coalesce(sum(s.v), 0) FROM bench_q.src s WHERE s.k = refresh_key.k
            ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total;
        END
        $$;
        """;

    /// <summary>
    /// An index the refresh function can answer from alone (an index-only scan, where the visibility map allows): a key's rows are
    /// scattered over the table (each write transaction touches 50 keys), so reading them from the table costs a page per row.
    /// </summary>
    public const string CoveringIndex = "DROP INDEX IF EXISTS bench_q.src_k; CREATE INDEX src_k_v ON bench_q.src (k) INCLUDE (v);";

    public const string Mismatches = """
        SELECT count(*) FROM (SELECT k, count(*) AS n, sum(v) AS total FROM bench_q.src GROUP BY k) e
          FULL JOIN bench_q.mart m USING (k)
         WHERE m.n IS DISTINCT FROM e.n OR m.total IS DISTINCT FROM e.total
        """;

    private const string Prefix = "bench_q.refresh_key(k=";

    public static RefreshTarget Key(int key) => RefreshTarget.Function("bench_q.refresh_key", ("k", key));

    public static RefreshTarget? Resolve(string text) =>
        text.StartsWith(Prefix, StringComparison.Ordinal) && int.TryParse(text.AsSpan(Prefix.Length, text.Length - Prefix.Length - 1), out var key) ? Key(key) : null;

    /// <summary>An app instance: its own data source (connections) and container; the worker runs only when <paramref name="worker"/>.</summary>
    public static ServiceProvider Instance(
        string connectionString, bool notify, bool worker = false, TimeSpan? settle = null, TimeSpan? maxWait = null, int targetsPerRun = 100, int concurrentRuns = 8, bool shares = true)
    {
        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        services.AddMatViewRefresh(o =>
        {
            o.Durable.Enabled = worker;
            o.Durable.ListenNotify = notify;
            o.Durable.MaxConcurrentRuns = concurrentRuns;
            o.Durable.MaxTargetsPerRun = targetsPerRun;
            o.Durable.ShareTargets = shares;
            o.Durable.PollInterval = TimeSpan.FromMilliseconds(200);
            o.Durable.Resolver = Resolve;
            var delay = settle ?? TimeSpan.FromMilliseconds(200);
            o.Debounce.DelayMin = delay;
            o.Debounce.DelayMax = delay;
            o.Debounce.MaxWait = maxWait ?? delay + TimeSpan.FromSeconds(1);
            o.Debounce.MinInterval = TimeSpan.Zero;
        });
        return services.BuildServiceProvider();
    }

    public static async Task StartWorkerAsync(ServiceProvider services)
    {
        foreach (var hosted in services.GetServices<IHostedService>().OfType<DurableRefreshWorker>())
        {
            await hosted.StartAsync(CancellationToken.None);
        }
    }

    public static string GroupStats(ServiceProvider services) =>
        string.Join(" / ", services.GetServices<IHostedService>().OfType<DurableRefreshWorker>().Select(w => string.Join(", ", w.GroupStats.Select(v => v.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))));

    public static async Task StopWorkerAsync(ServiceProvider services)
    {
        foreach (var hosted in services.GetServices<IHostedService>().OfType<DurableRefreshWorker>())
        {
            await hosted.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>One write transaction: rows of <paramref name="keys"/> inserted, and (with <paramref name="queue"/>) a request per key enqueued in it.</summary>
    public static async Task WriteAsync(NpgsqlDataSource dataSource, IRefreshQueue? queue, int[] keys, int value)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand(keys.Length == 1 ? "INSERT INTO bench_q.src (k, v) VALUES ($1, $2)" : "INSERT INTO bench_q.src (k, v) SELECT unnest($1::int[]), $2", connection, transaction))
        {
            insert.Parameters.Add(new() { Value = keys.Length == 1 ? keys[0] : keys });
            insert.Parameters.Add(new() { Value = value });
            await insert.ExecuteNonQueryAsync();
        }

        if (queue is not null && keys.Length == 1)
        {
            await queue.EnqueueAsync(Key(keys[0]), transaction, CancellationToken.None);
        }
        else if (queue is not null)
        {
            await queue.EnqueueAsync(keys.Select(Key), transaction, CancellationToken.None); // one round trip for the batch
        }

        await transaction.CommitAsync();
    }
}
