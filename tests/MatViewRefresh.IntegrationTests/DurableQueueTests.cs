using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>
/// Durable requests on a real server: q.refresh_key(k) recomputes one key's row of q.mart from q.src and records its run
/// interval in q.runs; a key listed in q.slow sleeps first, one listed in q.poison always fails.
/// </summary>
[Collection(DurableQueueCollection.Name)]
public sealed partial class DurableQueueTests(OwnServerDatabaseFixture db) : IClassFixture<OwnServerDatabaseFixture>, IAsyncLifetime
{
    private const string Schema = """
        CREATE SCHEMA IF NOT EXISTS q;
        CREATE TABLE IF NOT EXISTS q.src (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, k int NOT NULL, v int NOT NULL);
        CREATE INDEX IF NOT EXISTS src_k ON q.src (k);
        CREATE TABLE IF NOT EXISTS q.mart (k int PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS q.runs (k int NOT NULL, started timestamptz NOT NULL, finished timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS q.slow (k int PRIMARY KEY, seconds float8 NOT NULL);
        CREATE TABLE IF NOT EXISTS q.poison (k int PRIMARY KEY);
        CREATE OR REPLACE FUNCTION q.refresh_key(k int) RETURNS void LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE v_started timestamptz := clock_timestamp();
        BEGIN
            PERFORM pg_sleep(coalesce((SELECT s.seconds FROM q.slow s WHERE s.k = refresh_key.k), 0));
            IF EXISTS (SELECT 1 FROM q.poison p WHERE p.k = refresh_key.k) THEN
                RAISE EXCEPTION 'key % is poison', refresh_key.k;
            END IF;
            INSERT INTO q.mart (k, n, total)
            SELECT refresh_key.k, count(*), coalesce(sum(s.v), 0) FROM q.src s WHERE s.k = refresh_key.k
            ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total;
            INSERT INTO q.runs VALUES (refresh_key.k, v_started, clock_timestamp());
        END
        $$;
        CREATE TABLE IF NOT EXISTS q.t (id int);
        CREATE MATERIALIZED VIEW IF NOT EXISTS q.mv_count AS SELECT count(*) AS n FROM q.t;
        CREATE MATERIALIZED VIEW IF NOT EXISTS q.mv_sentinel AS SELECT 1 AS one;
        """;

    private const string Mismatches = """
        SELECT count(*) FROM (SELECT k, count(*) AS n, sum(v) AS total FROM q.src GROUP BY k) e
          FULL JOIN q.mart m USING (k)
         WHERE m.n IS DISTINCT FROM e.n OR m.total IS DISTINCT FROM e.total
        """;

    private const string Overlaps = """
        SELECT count(*) FROM q.runs a JOIN q.runs b ON a.k = b.k AND a.ctid < b.ctid AND a.started < b.finished AND b.started < a.finished
        """;

    public async Task InitializeAsync()
    {
        var services = db.CreateServices();
        await services.GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        await db.ExecuteAsync(Schema);
        await db.ExecuteAsync("""
            TRUNCATE q.src, q.mart, q.runs, q.slow, q.poison, q.t;
            TRUNCATE matview_refresh.refresh_requests, matview_refresh.refresh_queue_state, matview_refresh.refresh_history, matview_refresh.refresh_log,
                     matview_refresh.refresh_workers;
            """);
    }

    // Every test stops its workers: a worker left running would serve the next test's requests with its own settings.
    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.StopAsync(CancellationToken.None);
        }

        // Each instance holds a pool of connections: close them now, not when the class ends (the server allows 200).
        foreach (var instance in _instances)
        {
            await instance.DisposeAsync();
        }

        foreach (var process in _processes)
        {
            try
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // exited already (and disposed)
            }
        }
    }

    private readonly List<IHostedService> _workers = [];
    private readonly List<Process> _processes = [];
    private readonly List<ServiceProvider> _instances = [];

    private ServiceProvider Instance(
        TimeSpan? settle = null, int maxConcurrentRuns = 4, RecordingLoggerProvider? logs = null, TimeSpan? maxWait = null, int maxTargetsPerRun = 100,
        Action<IServiceCollection>? more = null, TimeSpan? minInterval = null) => Track(db.CreateServices(o =>
    {
        var delay = settle ?? TimeSpan.FromMilliseconds(20);
        o.Durable.Enabled = true;
        o.Durable.PollInterval = TimeSpan.FromMilliseconds(50);
        o.Durable.MaxConcurrentRuns = maxConcurrentRuns;
        o.Durable.MaxTargetsPerRun = maxTargetsPerRun;
        o.Durable.Resolver = QueueTestTargets.Resolve;
        o.Debounce.DelayMin = delay;
        o.Debounce.DelayMax = delay;
        o.Debounce.MaxWait = maxWait ?? delay + TimeSpan.FromMilliseconds(300);
        o.Debounce.MinInterval = minInterval ?? TimeSpan.Zero;
        o.Debounce.FailureRetryDelay = TimeSpan.FromMilliseconds(100);
        o.Debounce.FailureRetryMaxDelay = TimeSpan.FromSeconds(1);
    }, more, logs));

    private ServiceProvider Track(ServiceProvider services)
    {
        _instances.Add(services);
        return services;
    }

    private async Task<IHostedService> StartWorkerAsync(ServiceProvider services)
    {
        var worker = services.GetServices<IHostedService>().OfType<DurableRefreshWorker>().Single();
        _workers.Add(worker);
        await worker.StartAsync(CancellationToken.None);
        return worker;
    }

    private async Task WriteAsync(IRefreshQueue queue, int key, int value, bool commit = true)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO q.src (k, v) VALUES ($1, $2)", connection, transaction))
        {
            insert.Parameters.Add(new() { Value = key });
            insert.Parameters.Add(new() { Value = value });
            await insert.ExecuteNonQueryAsync();
        }

        await queue.EnqueueAsync(QueueTestTargets.Key(key), transaction, CancellationToken.None);
        if (commit)
        {
            await transaction.CommitAsync();
        }
        else
        {
            await transaction.RollbackAsync();
        }
    }

    private async Task QuiescentAsync(TimeSpan? timeout = null)
    {
        try
        {
            await DatabaseFixture.EventuallyAsync(
                async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests") == 0,
                "every durable request run and deleted", timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            var left = await db.ScalarAsync<string>("""
                SELECT format('%s request(s) of %s target(s) left; state: %s; sessions: %s',
                    (SELECT count(*) FROM matview_refresh.refresh_requests), (SELECT count(DISTINCT target) FROM matview_refresh.refresh_requests),
                    (SELECT string_agg(format('%s failures=%s retry_at=%s %s', target, failures, retry_at, left(last_error, 200)), '; ') FROM matview_refresh.refresh_queue_state WHERE failures > 0 OR retry_at > now()),
                    (SELECT string_agg(format('%s/%s/%s', state, wait_event, left(query, 60)), '; ') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()))
                """);
            throw new TimeoutException(e.Message + ": " + left, e);
        }
    }

    [Fact]
    public async Task Request_enqueued_in_a_rolled_back_transaction_never_runs()
    {
        var services = Instance();
        var queue = services.GetRequiredService<IRefreshQueue>();
        await WriteAsync(queue, 1, 10, commit: false);
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await queue.EnqueueAsync(RefreshTarget.View("q.mv_count"), transaction, CancellationToken.None);
            await transaction.RollbackAsync();
        }

        await StartWorkerAsync(services);

        // A committed request enqueued after the rolled-back ones runs: the worker has looked at the queue since.
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await queue.EnqueueAsync(RefreshTarget.View("q.mv_sentinel"), connection, CancellationToken.None);
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'q.mv_sentinel' AND success") == 1,
            "the committed request's run");
        await QuiescentAsync();
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target <> 'q.mv_sentinel'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM q.runs"));
    }

    [Fact]
    public async Task Committed_requests_of_one_target_coalesce_into_one_run_that_deletes_them_and_records_its_lag()
    {
        var services = Instance(settle: TimeSpan.FromMilliseconds(300));
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.t SELECT generate_series(1, 5)");
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            for (var i = 0; i < 5; i++)
            {
                await queue.EnqueueAsync(RefreshTarget.View("q.mv_count"), connection, CancellationToken.None);
            }
        }

        await StartWorkerAsync(services);
        await QuiescentAsync();

        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT n FROM q.mv_count"));
        var history = await services.GetRequiredService<IRefreshLog>().GetHistoryAsync(target: RefreshTarget.View("q.mv_count"));
        var run = Assert.Single(history);
        Assert.True(run.Success);
        Assert.Equal("queue", run.Trigger);
        var lag = await db.ScalarAsync<double>("SELECT lag_ms FROM matview_refresh.refresh_history WHERE target = 'q.mv_count'");
        Assert.InRange(lag, 300, 30_000); // at least the settle delay after the newest request
        var summary = await services.GetRequiredService<IRefreshLog>().GetSummaryAsync(RefreshTarget.View("q.mv_count"));
        Assert.Equal(TimeSpan.FromMilliseconds(lag), summary.LagP50);
        Assert.Equal(TimeSpan.FromMilliseconds(lag), summary.LagP99);
        var freshness = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(RefreshTarget.View("q.mv_count"));
        Assert.Equal(TimeSpan.FromMilliseconds(lag), freshness!.LastLag);
    }

    [Fact]
    public async Task With_ListenNotify_a_request_wakes_a_worker_that_would_otherwise_poll_only_hourly()
    {
        var logs = new RecordingLoggerProvider();
        var services = Track(db.CreateServices(o =>
        {
            o.Durable.Enabled = true;
            o.Durable.ListenNotify = true;
            o.Durable.PollInterval = TimeSpan.FromHours(1);
            o.Durable.Resolver = QueueTestTargets.Resolve;
            o.Debounce.DelayMin = o.Debounce.DelayMax = TimeSpan.Zero;
            o.Debounce.MinInterval = TimeSpan.Zero;
        }, logs: logs));
        await StartWorkerAsync(services);
        await logs.WhenLogged(MatViewRefreshEventIds.DurableWorkerStarted).WaitAsync(TimeSpan.FromSeconds(20));
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'") == 1,
            "the worker listening");

        await WriteAsync(services.GetRequiredService<IRefreshQueue>(), 3, 30);
        await QuiescentAsync(TimeSpan.FromSeconds(20)); // well before the next poll, an hour away
        Assert.Equal(30L, await db.ScalarAsync<long>("SELECT total FROM q.mart WHERE k = 3"));
    }

    [Fact]
    public async Task Request_committed_while_its_target_runs_stays_and_causes_one_more_run()
    {
        var services = Instance();
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.slow VALUES (7, 1.5)");
        await WriteAsync(queue, 7, 1);
        await StartWorkerAsync(services);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%refresh_key%'") == 1,
            "the first run sleeping inside the refresh");

        await WriteAsync(queue, 7, 100); // committed after the running refresh took its snapshot
        await QuiescentAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(101L, await db.ScalarAsync<long>("SELECT total FROM q.mart WHERE k = 7"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM q.runs WHERE k = 7"));
        Assert.Equal(0L, await db.ScalarAsync<long>(Overlaps));
    }

    [Fact]
    public async Task A_target_that_always_fails_backs_off_is_reported_and_does_not_delay_other_targets()
    {
        var logs = new RecordingLoggerProvider();
        var services = Instance(maxConcurrentRuns: 2, logs: logs);
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.poison VALUES (1)");
        await WriteAsync(queue, 1, 1);
        await StartWorkerAsync(services);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<int?>("SELECT failures FROM matview_refresh.refresh_queue_state WHERE target = 'q.refresh_key(k=1)'") >= 2,
            "the poison target failing twice");

        for (var key = 2; key <= 30; key++)
        {
            await WriteAsync(queue, key, key);
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target <> 'q.refresh_key(k=1)'") == 0,
            "every other target run", TimeSpan.FromSeconds(20));
        Assert.Equal(29L, await db.ScalarAsync<long>("SELECT count(*) FROM q.mart"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target = 'q.refresh_key(k=1)'"));
        var failed = logs.Events.Where(e => e.Id.Id == MatViewRefreshEventIds.DurableRunFailed).Select(e => e.Message).ToList();
        Assert.NotEmpty(failed);
        Assert.Contains("key 1 is poison", failed[0], StringComparison.Ordinal);

        // Once the target heals, its request (kept through every failure) runs.
        await db.ExecuteAsync("DELETE FROM q.poison");
        await QuiescentAsync();
        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
    }

    [Fact]
    public async Task Requests_for_a_target_this_instance_cannot_resolve_are_left_and_reported_once()
    {
        var logs = new RecordingLoggerProvider();
        var services = Track(db.CreateServices(o =>
        {
            o.Durable.Enabled = true;
            o.Durable.PollInterval = TimeSpan.FromMilliseconds(50);
            o.Debounce.DelayMin = o.Debounce.DelayMax = TimeSpan.Zero;
        }, logs: logs));
        await db.ExecuteAsync("INSERT INTO matview_refresh.refresh_requests (target) VALUES ('q.refresh_key(k=5)'), ('q.refresh_key(k=5)'), ('q.src')");
        await StartWorkerAsync(services);
        await logs.WhenLogged(MatViewRefreshEventIds.DurableTargetUnresolved).WaitAsync(TimeSpan.FromSeconds(20));
        await DatabaseFixture.EventuallyAsync(
            () => Task.FromResult(logs.Events.Count(e => e.Id.Id == MatViewRefreshEventIds.DurableTargetUnresolved) == 2),
            "both targets reported");

        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history"));
    }

    [Fact]
    public async Task Bad_input_is_refused_with_a_message_naming_it_and_writes_nothing()
    {
        var queue = Instance().GetRequiredService<IRefreshQueue>();
        var window = RefreshTarget.Window("q.mart", "k", "SELECT * FROM q.mart WHERE k >= @from AND k < @to");
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            var notWindow = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueDaysAsync(QueueTestTargets.Key(1), March(1), March(2), transaction));
            Assert.Contains("q.refresh_key(k=1) is a Function target", notWindow.Message, StringComparison.Ordinal);
            var reversed = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueDaysAsync(window, March(5), March(2), transaction));
            Assert.Contains("2025-03-02 is before the first day 2025-03-05", reversed.Message, StringComparison.Ordinal);
            var endless = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueDaysAsync(window, March(5), DateOnly.MaxValue, transaction));
            Assert.Contains("9999-12-31 is the last representable day", endless.Message, StringComparison.Ordinal);
            await transaction.CommitAsync();
            var completed = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync(window, transaction, CancellationToken.None));
            Assert.Contains("transaction is completed", completed.Message, StringComparison.Ordinal);
        }

        await using var closed = db.DataSource.CreateConnection();
        var notOpen = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync(window, closed, CancellationToken.None));
        Assert.Contains("The connection is Closed, not open", notOpen.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests"));

        // The days overload writes the days for the worker to merge.
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await queue.EnqueueDaysAsync(window, March(2), March(4), transaction);
            await transaction.CommitAsync();
        }

        Assert.Equal("q.mart 2025-03-02 2025-03-04", await db.ScalarAsync<string>("SELECT target || ' ' || first_day || ' ' || last_day FROM matview_refresh.refresh_requests"));
    }

    private static DateOnly March(int day) => new(2025, 3, day);

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Workers_in_several_containers_and_a_separate_process_reflect_every_committed_change_without_overlapping_runs(int containers)
    {
        // Settle 1 s, MaxWait 3 s: a key's requests within a second or so share a run.
        var instances = Enumerable.Range(0, containers).Select(_ => Instance(settle: TimeSpan.FromSeconds(1), maxWait: TimeSpan.FromSeconds(3))).ToArray();
        using var process = await StartHostAsync("worker", "1000", "ready");
        foreach (var instance in instances)
        {
            await StartWorkerAsync(instance);
        }

        const int keys = 1000;
        var committed = 0;
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            // Bursts, as ingest clients send them: a few transactions on one key back to back, one in ten rolled back.
            var random = new Random(w);
            for (var burst = 0; burst < 200; burst++)
            {
                var key = random.Next(keys);
                for (var i = random.Next(2, 9); i > 0; i--)
                {
                    var commit = random.Next(10) != 0;
                    await WriteAsync(instances[random.Next(instances.Length)].GetRequiredService<IRefreshQueue>(), key, random.Next(1, 100), commit);
                    if (commit)
                    {
                        Interlocked.Increment(ref committed);
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(2));
        await QuiescentAsync(TimeSpan.FromMinutes(2));
        await StopHostAsync(process);

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(0L, await db.ScalarAsync<long>(Overlaps));
        var runs = await db.ScalarAsync<long>("SELECT count(*) FROM q.runs");
        Assert.True(runs < committed / 3, $"{runs} runs for {committed} committed requests");
        Assert.Equal(runs, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE success AND trigger = 'queue' AND lag_ms IS NOT NULL"));
    }

    [Fact]
    public async Task Request_committed_by_a_process_killed_before_its_run_is_run_by_a_new_process()
    {
        using (var app = await StartHostAsync("enqueue", "42", "committed"))
        {
            app.Kill(); // SIGKILL: no shutdown, no flush
            await app.WaitForExitAsync();
        }

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target = 'q.refresh_key(k=42)'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM q.mart"));

        using var worker = await StartHostAsync("worker", "0", "ready");
        await QuiescentAsync();
        await StopHostAsync(worker);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT n FROM q.mart WHERE k = 42"));
    }

    [Fact]
    public async Task Worker_process_killed_mid_run_leaves_its_requests_to_another_instance()
    {
        await db.ExecuteAsync("INSERT INTO q.slow VALUES (9, 2)");
        using (var dying = await StartHostAsync("worker", "0", "ready"))
        {
            await WriteAsync(Instance().GetRequiredService<IRefreshQueue>(), 9, 5);
            await DatabaseFixture.EventuallyAsync(
                async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%refresh_key%'") == 1,
                "the doomed run sleeping inside the refresh");
            dying.Kill();
            await dying.WaitForExitAsync();
        }

        await db.ExecuteAsync("DELETE FROM q.slow");
        await StartWorkerAsync(Instance());
        await QuiescentAsync();
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT total FROM q.mart WHERE k = 9"));
        // The killed process's refresh statement may still finish on the server (it was sent as one round trip), but its claim
        // died with its connection: the request stayed, and the other instance ran it after the lock was gone. At least once.
        Assert.Equal(0L, await db.ScalarAsync<long>(Overlaps));
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'q.refresh_key' AND success AND lag_ms IS NOT NULL") >= 1);
    }

    private async Task<Process> StartHostAsync(string mode, string argument, string readyLine)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(QueueTestTargets).Assembly.Location);
        start.ArgumentList.Add(mode);
        start.ArgumentList.Add(db.ConnectionString);
        start.ArgumentList.Add(argument);
        var process = Process.Start(start)!;
        _processes.Add(process);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.ErrorDataReceived += (_, e) => errors.Enqueue(e.Data ?? string.Empty);
        process.BeginErrorReadLine();
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))
                ?? throw new InvalidOperationException($"The test host ({mode}) exited with {(process.WaitForExit(5000) ? process.ExitCode : -1)} before printing '{readyLine}': {string.Join('\n', errors)}");
            if (line.Contains(readyLine, StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync(); // keep draining: a full pipe would block the process mid-run
                return process;
            }
        }
    }

    private static async Task StopHostAsync(Process process)
    {
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }
}

/// <summary>
/// The durable queue's tests run alone, after the parallel ones: several app instances and a separate process at once use
/// many connections, and their load would slow the timing-sensitive tests of other classes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DurableQueueCollection
{
    public const string Name = "Durable queue (not parallel)";
}

/// <summary>
/// A database on a server of its own: the durable queue's tests run several app instances and a separate process at once,
/// and must not compete for the shared server's 500 connections with the rest of the suite.
/// </summary>
public sealed class OwnServerDatabaseFixture : DatabaseFixture
{
    private ThrowawayPostgres? _server;

    protected override async Task<ThrowawayPostgres> ServerAsync() => _server = await ThrowawayPostgres.StartAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
