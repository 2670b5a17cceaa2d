using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh.IntegrationTests;

/// <summary>Grouped durable runs (<see cref="DurableRefreshOptions.MaxTargetsPerRun"/>) and the SQL that feeds them.</summary>
public sealed partial class DurableQueueTests
{
    private const string SuccessfulRunsByTransaction = "SELECT count(DISTINCT xmin::text) FROM matview_refresh.refresh_history WHERE trigger = 'queue' AND success";

    /// <summary>
    /// Writes one request for each of <paramref name="keys"/> and waits (on the database, not a timer) until all are older than
    /// <paramref name="settle"/>: due together when a worker starts. (With a worker running, they would be run before that.)
    /// </summary>
    private async Task WriteDueAsync(IRefreshQueue queue, IEnumerable<int> keys, TimeSpan settle)
    {
        var count = 0;
        foreach (var key in keys)
        {
            await WriteAsync(queue, key, key);
            count++;
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE requested_at < clock_timestamp() - $1::interval", settle) >= count,
            "every request older than the settle delay");
    }

    [Fact]
    public async Task Due_function_targets_run_together_in_one_transaction_each_with_its_own_history_and_log_row_and_lag_while_a_view_runs_alone()
    {
        var services = Instance(maxConcurrentRuns: 1);
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.t SELECT generate_series(1, 3)");
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await queue.EnqueueAsync(RefreshTarget.View("q.mv_count"), connection, CancellationToken.None);
        }

        await WriteDueAsync(queue, Enumerable.Range(1, 20), TimeSpan.FromMilliseconds(20));
        await StartWorkerAsync(services);
        await QuiescentAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT n FROM q.mv_count"));
        Assert.Equal(20L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE trigger = 'queue' AND success AND mode = 'function' AND lag_ms >= 20"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(DISTINCT xmin::text) FROM matview_refresh.refresh_history WHERE mode = 'function'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("""
            SELECT count(*) FROM matview_refresh.refresh_history v JOIN matview_refresh.refresh_history f ON f.mode = 'function' AND f.xmin::text = v.xmin::text
             WHERE v.target = 'q.mv_count'
            """)); // the view ran in its own transaction
        Assert.Equal(20L, await db.ScalarAsync<long>("""
            SELECT count(*) FROM matview_refresh.refresh_log l JOIN matview_refresh.refresh_history h USING (target, scope)
             WHERE h.mode = 'function' AND l.mode = 'function' AND l.data_as_of = h.data_as_of AND l.last_error IS NULL
               AND abs(extract(epoch FROM l.last_refreshed_at - h.started_at) * 1000 - h.duration_ms) < 0.01
            """));

        var log = services.GetRequiredService<IRefreshLog>();
        var freshness = await log.GetFreshnessAsync(QueueTestTargets.Key(7));
        Assert.NotNull(freshness?.DataAsOf);
        Assert.NotNull(freshness!.LastLag);
        var summary = await log.GetSummaryAsync(QueueTestTargets.Key(7));
        Assert.Equal(1, summary.Count);
        Assert.Equal(freshness.LastLag, summary.LagP99);
    }

    [Fact]
    public async Task A_target_measured_slow_in_a_group_gets_a_group_of_its_own_and_the_cheap_ones_still_share_one()
    {
        // One run at a time: every due target fits one group, unless it is set apart (with more runs, due targets fewer than
        // the runs could take are also spread over them by their measured cost).
        var services = Instance(settle: TimeSpan.FromMilliseconds(200), maxConcurrentRuns: 1);
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.slow VALUES (1, 0.4)");
        await StartWorkerAsync(services);

        // Twice, five targets due at once (one transaction): the first round, one group, measures them (key 1 takes 400 ms, the
        // others about nothing); in the second, the four cheap ones share a group and key 1 has its own.
        for (var round = 1; round <= 2; round++)
        {
            await using (var connection = await db.DataSource.OpenConnectionAsync())
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                await using (var insert = new NpgsqlCommand("INSERT INTO q.src (k, v) SELECT g, 1 FROM generate_series(1, 5) g", connection, transaction))
                {
                    await insert.ExecuteNonQueryAsync();
                }

                await queue.EnqueueAsync(Enumerable.Range(1, 5).Select(QueueTestTargets.Key), transaction, CancellationToken.None);
                await transaction.CommitAsync();
            }

            await QuiescentAsync();
        }

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(10L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE success AND trigger = 'queue'"));
        var second = """
            SELECT h.scope, h.xmin::text AS tx FROM matview_refresh.refresh_history h
             WHERE h.id IN (SELECT max(id) FROM matview_refresh.refresh_history GROUP BY target, scope)
            """;
        Assert.Equal(5L, await db.ScalarAsync<long>($"SELECT count(*) FROM ({second}) s"));
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(DISTINCT tx) FROM ({second}) s WHERE scope <> 'k=1'"));
        Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM ({second}) s JOIN ({second}) o ON o.tx = s.tx AND o.scope <> s.scope WHERE s.scope = 'k=1'"));
    }

    [Fact]
    public async Task A_view_seen_coming_due_by_a_read_is_not_started_before_its_settle_delay_after_a_later_request()
    {
        // A read lists targets due soon (to start them when due); a request after that read moves the view's settle delay, and
        // a single run's claim does not re-check due-ness: the view must wait for a read that finds it due.
        var settle = TimeSpan.FromSeconds(2); // long beside the 300 ms between the requests, even on a slow machine
        var services = Instance(settle: settle, maxWait: TimeSpan.FromSeconds(10),
            more: s => s.PostConfigure<MatViewRefreshOptions>(o => o.Durable.PollInterval = TimeSpan.FromSeconds(10))); // no read between the two requests and the first one's due time
        var queue = services.GetRequiredService<IRefreshQueue>();
        var view = RefreshTarget.View("q.mv_count");
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await queue.EnqueueAsync(view, connection, CancellationToken.None);
        }

        await StartWorkerAsync(services);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers") == 1, "the worker's first read");
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<bool>("SELECT clock_timestamp() - min(requested_at) >= interval '300 ms' FROM matview_refresh.refresh_requests"),
            "the first request to be 300 ms old");
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await queue.EnqueueAsync(view, connection, CancellationToken.None);
        }

        var newest = await db.ScalarAsync<DateTime>("SELECT max(requested_at) FROM matview_refresh.refresh_requests");
        await QuiescentAsync();

        var started = await db.ScalarAsync<DateTime>("SELECT started_at FROM matview_refresh.refresh_history WHERE target = 'q.mv_count' AND success");
        Assert.True(started >= newest + settle, $"started {started:O}, newest request {newest:O}");
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'q.mv_count'"));
    }

    [Fact]
    public async Task A_failing_target_fails_only_its_group_whose_targets_then_run_alone_and_later_groups_leave_it_out()
    {
        var logs = new RecordingLoggerProvider();
        var services = Instance(maxConcurrentRuns: 1, logs: logs);
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.poison VALUES (5)");
        await WriteDueAsync(queue, Enumerable.Range(1, 20), TimeSpan.FromMilliseconds(20));
        await StartWorkerAsync(services);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target <> 'q.refresh_key(k=5)'") == 0
                && await db.ScalarAsync<int?>("SELECT failures FROM matview_refresh.refresh_queue_state WHERE target = 'q.refresh_key(k=5)'") >= 2,
            "the other targets run and the failing one failed twice");

        // The group rolled back whole: every other target has exactly one run (its own), none half-recorded by the group.
        Assert.Equal(19L, await db.ScalarAsync<long>("SELECT count(*) FROM q.mart"));
        Assert.Equal(19L, await db.ScalarAsync<long>("SELECT count(*) FROM q.runs"));
        Assert.Equal(19L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE success"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target = 'q.refresh_key(k=5)'"));
        var failed = Assert.Single(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.DurableGroupFailed);
        Assert.Contains("key 5 is poison", failed.Message, StringComparison.Ordinal);

        // Later groups leave the failing target out: more work runs grouped, and no group fails again.
        for (var key = 21; key <= 30; key++)
        {
            await WriteAsync(queue, key, key); // the worker runs them as they come due
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target <> 'q.refresh_key(k=5)'") == 0,
            "the later targets run");
        Assert.Single(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.DurableGroupFailed);

        await db.ExecuteAsync("DELETE FROM q.poison");
        await QuiescentAsync();
        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
    }

    [Fact]
    public async Task A_lock_held_on_one_targets_rows_fails_its_group_within_a_second_and_the_others_are_refreshed_while_it_waits_alone()
    {
        var services = Instance(maxConcurrentRuns: 2); // the fixture's LockTimeout is 20 s
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.mart SELECT g, 0, 0 FROM generate_series(1, 20) g");
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var held = await holder.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand("SELECT * FROM q.mart WHERE k = 5 FOR UPDATE", holder, held))
        {
            await lockRow.ExecuteNonQueryAsync();
        }

        await WriteDueAsync(queue, Enumerable.Range(1, 20), TimeSpan.FromMilliseconds(20));
        await StartWorkerAsync(services);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM q.mart WHERE k <> 5 AND n = 1") == 19,
            "the other targets refreshed while key 5's row is locked (well within its 20 s lock timeout)", TimeSpan.FromSeconds(12));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT n FROM q.mart WHERE k = 5"));

        await held.RollbackAsync(); // key 5, waiting alone, gets its lock
        await QuiescentAsync();
        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
    }

    [Fact]
    public async Task Targets_of_a_function_returning_a_set_are_grouped_by_their_own_statements_and_none_fails_its_group()
    {
        var logs = new RecordingLoggerProvider();
        var services = Instance(maxConcurrentRuns: 1, logs: logs);
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("""
            CREATE OR REPLACE FUNCTION q.refresh_set(k int) RETURNS SETOF int LANGUAGE sql AS $$
                INSERT INTO q.mart (k, n, total) SELECT refresh_set.k, count(*), coalesce(sum(s.v), 0) FROM q.src s WHERE s.k = refresh_set.k
                ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total;
                SELECT 1 WHERE false; -- no rows: called for many targets in one statement, it would leave no row for them
            $$;
            """);
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using (var insert = new NpgsqlCommand("INSERT INTO q.src (k, v) SELECT g, g FROM generate_series(1, 6) g", connection, transaction))
            {
                await insert.ExecuteNonQueryAsync();
            }

            await queue.EnqueueAsync(Enumerable.Range(1, 6).Select(k => RefreshTarget.Function("q.refresh_set", ("k", k))), transaction, CancellationToken.None);
            await transaction.CommitAsync();
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE requested_at < clock_timestamp() - interval '20 ms'") == 6,
            "every request settled");
        await StartWorkerAsync(services);
        await QuiescentAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(1L, await db.ScalarAsync<long>(SuccessfulRunsByTransaction)); // one group
        Assert.DoesNotContain(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.DurableGroupFailed);
    }

    [Fact]
    public async Task With_MaxTargetsPerRun_1_every_target_runs_in_its_own_transaction()
    {
        var services = Instance(maxConcurrentRuns: 1, maxTargetsPerRun: 1);
        await WriteDueAsync(services.GetRequiredService<IRefreshQueue>(), Enumerable.Range(1, 8), TimeSpan.FromMilliseconds(20));
        await StartWorkerAsync(services);
        await QuiescentAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(8L, await db.ScalarAsync<long>(SuccessfulRunsByTransaction));
    }

    [Fact]
    public async Task With_a_replaced_executor_every_refresh_goes_through_it_one_target_at_a_time()
    {
        var recorder = new RecordingRefreshExecutor();
        var services = Instance(maxConcurrentRuns: 1, more: s => s.AddSingleton<IRefreshExecutor>(recorder));
        await WriteDueAsync(services.GetRequiredService<IRefreshQueue>(), Enumerable.Range(1, 8), TimeSpan.FromMilliseconds(20));
        await StartWorkerAsync(services);
        await QuiescentAsync();

        Assert.Equal(
            Enumerable.Range(1, 8).Select(k => QueueTestTargets.Key(k).ToString()).Order(StringComparer.Ordinal),
            recorder.Refreshes.Select(c => c.Target.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM q.runs")); // the recorder ran nothing
    }

    [Fact]
    public async Task A_group_claim_takes_only_due_free_healthy_targets_not_being_refreshed_and_deletes_only_their_requests_until_it_commits()
    {
        var sql = new DurableSql("matview_refresh");
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at) VALUES
                ('due', clock_timestamp() - interval '10 s'), ('due', clock_timestamp() - interval '5 s'),
                ('fresh', clock_timestamp()),
                ('held', clock_timestamp() - interval '10 s'),
                ('refreshing', clock_timestamp() - interval '10 s'),
                ('failing', clock_timestamp() - interval '10 s'),
                ('other', clock_timestamp() - interval '10 s');
            INSERT INTO matview_refresh.refresh_queue_state (target, failures) VALUES ('failing', 2);
            """);
        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var held = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({DurableSql.ClaimLockClass}, hashtext('held')), pg_advisory_xact_lock($1)", holder, held))
        {
            hold.Parameters.Add(new() { Value = RefreshSql.LockKey(RefreshTarget.View("public.refreshing")) }); // a refresh of it is running
            await hold.ExecuteNonQueryAsync();
        }

        string[] offered = ["due", "fresh", "held", "refreshing", "failing", "gone"];

        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var rows = new Dictionary<string, (bool Healthy, bool Due, bool Locked, long Requests)>();
        await using (var locks = new NpgsqlCommand(sql.LockGroup, connection, transaction))
        {
            locks.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = offered });
            await locks.ExecuteNonQueryAsync();
        }

        await using (var claim = new NpgsqlCommand(sql.ClaimGroup, connection, transaction))
        {
            claim.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = offered });
            claim.Parameters.Add(new() { Value = TimeSpan.FromSeconds(1) });
            claim.Parameters.Add(new() { Value = TimeSpan.FromSeconds(1) });
            claim.Parameters.Add(new() { Value = TimeSpan.Zero });
            claim.Parameters.Add(new() { Value = offered.Select(t => RefreshSql.LockKey(RefreshTarget.View("public." + t))).ToArray() });
            await using var reader = await claim.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows[reader.GetString(0)] = (reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetInt64(7));
            }
        }

        Assert.Equal((true, true, true, 2L), rows["due"]);
        Assert.Equal((true, false, true, 0L), rows["fresh"]); // settles for another second
        Assert.Equal((true, false, false, 0L), rows["held"]); // another instance has it
        Assert.Equal((true, true, false, 0L), rows["refreshing"]); // due, but a refresh of it (manual, scheduled) is running
        Assert.Equal((false, true, true, 0L), rows["failing"]); // runs alone
        Assert.Equal((true, false, true, 0L), rows["gone"]); // nothing pending: run by another instance since the list was read
        // Refresher locks are held for the targets the group will refresh, not for the ones it passes over.
        await using (var probe = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock($1), pg_try_advisory_xact_lock($2)", holder, held))
        {
            probe.Parameters.Add(new() { Value = RefreshSql.LockKey(RefreshTarget.View("public.due")) });
            probe.Parameters.Add(new() { Value = RefreshSql.LockKey(RefreshTarget.View("public.fresh")) });
            await using var reader = await probe.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.False(reader.GetBoolean(0));
            Assert.True(reader.GetBoolean(1));
        }

        Assert.Equal(7L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests")); // not yet committed
        await transaction.CommitAsync();
        Assert.Equal(
            "failing,fresh,held,other,refreshing",
            await db.ScalarAsync<string>("SELECT string_agg(DISTINCT target, ',' ORDER BY target) FROM matview_refresh.refresh_requests"));
    }

    [Fact]
    public async Task The_due_read_lists_targets_earliest_due_first_with_how_long_until_each_is_due()
    {
        var sql = new DurableSql("matview_refresh");
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at) VALUES
                ('quiet', clock_timestamp() - interval '3 s'),
                ('busy', clock_timestamp() - interval '3 s'), ('busy', clock_timestamp()),
                ('overdue', clock_timestamp() - interval '20 s'), ('overdue', clock_timestamp()),
                ('backing-off', clock_timestamp() - interval '20 s'),
                ('new', clock_timestamp());
            INSERT INTO matview_refresh.refresh_queue_state (target, failures, retry_at) VALUES ('backing-off', 1, clock_timestamp() + interval '30 s');
            """);
        var listed = await ReadDueAsync(sql, Guid.NewGuid());

        // overdue: 10 s MaxWait after its oldest; quiet: settled; busy and new: their newest still settling; backing-off: retry time.
        Assert.Equal(["overdue", "quiet", "busy", "new", "backing-off"], listed.Select(l => l.Target));
        Assert.True(listed[0].DueInMs < -9000 && listed[1].DueInMs is < 0 and > -2000, string.Join(", ", listed));
        Assert.InRange(listed[2].DueInMs, 1, 2000);
        Assert.InRange(listed[4].DueInMs, 25_000, 30_000);
    }

    [Fact]
    public async Task A_due_read_cut_short_by_its_limit_still_lists_the_targets_coming_due_and_the_reverse()
    {
        // Under load the due list fills the read's limit: the targets coming due (the read-ahead, started when due without
        // another read) have a limit of their own, or those due late in the read-ahead would be found only when overdue.
        var sql = new DurableSql("matview_refresh");
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at)
            SELECT 'due-' || g, clock_timestamp() - interval '3 s' - g * interval '1 ms' FROM generate_series(1, 5) g;
            INSERT INTO matview_refresh.refresh_requests (target, requested_at)
            SELECT 'coming-' || g, clock_timestamp() - interval '1 s' + g * interval '10 ms' FROM generate_series(1, 4) g;
            """);

        var worker = Guid.NewGuid(); // the only one: its share is every target
        var listed = await ReadDueAsync(sql, worker, dueLimit: 2, upcomingLimit: 3);
        Assert.Equal(["due-5", "due-4", "coming-1", "coming-2", "coming-3"], listed.Select(l => l.Target));
        Assert.All(listed.Take(2), l => Assert.True(l.DueInMs < 0, l.ToString()));
        Assert.All(listed.Skip(2), l => Assert.InRange(l.DueInMs, 1, 2000));

        listed = await ReadDueAsync(sql, worker, dueLimit: 10, upcomingLimit: 1);
        Assert.Equal(["due-5", "due-4", "due-3", "due-2", "due-1", "coming-1"], listed.Select(l => l.Target));

        // The same without shares.
        await using var all = db.DataSource.CreateCommand(sql.DueAll);
        all.Parameters.Add(new() { Value = TimeSpan.FromSeconds(2) });
        all.Parameters.Add(new() { Value = TimeSpan.FromSeconds(10) });
        all.Parameters.Add(new() { Value = TimeSpan.Zero });
        all.Parameters.Add(new() { Value = 2 });
        all.Parameters.Add(new() { Value = 3 });
        var targets = new List<string>();
        await using (var reader = await all.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                targets.Add(reader.GetString(0));
            }
        }

        Assert.Equal(["due-5", "due-4", "coming-1", "coming-2", "coming-3"], targets);
    }

    [Theory]
    [InlineData("read committed")]
    [InlineData("repeatable read")]
    public async Task Grouped_function_calls_hold_each_targets_refresher_lock_report_honest_times_and_fail_a_busy_target_with_MVR01(string isolation)
    {
        // The function returns when it ran: each target's start (data as of, under read committed) comes before its call,
        // and its finish after it; the next target starts after that.
        await db.ExecuteAsync("CREATE OR REPLACE FUNCTION q.probe(k int) RETURNS timestamptz LANGUAGE sql AS 'SELECT clock_timestamp()'");
        var statement = RefreshSql.FunctionCalls(new QualifiedName("q", "probe"), ["k"], [new[] { 1, 2 }], [9001L, 9002L], TimeSpan.FromSeconds(1), "matview_refresh");

        async Task<List<(long N, DateTimeOffset Ran, DateTimeOffset AsOf, DateTimeOffset At, double Ms, DateTimeOffset Began)>> CallAsync(NpgsqlConnection connection)
        {
            await using var transaction = await connection.BeginTransactionAsync(isolation == "read committed" ? System.Data.IsolationLevel.ReadCommitted : System.Data.IsolationLevel.RepeatableRead);
            await using var first = new NpgsqlCommand("SELECT transaction_timestamp()", connection, transaction);
            var began = await first.ExecuteScalarAsync() is DateTime t ? new DateTimeOffset(t, TimeSpan.Zero) : default;
            await using var command = new NpgsqlCommand(statement.CommandText, connection, transaction);
            foreach (var value in statement.Parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            var rows = new List<(long, DateTimeOffset, DateTimeOffset, DateTimeOffset, double, DateTimeOffset)>();
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    rows.Add((reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(reader.GetOrdinal("data_as_of")),
                              reader.GetFieldValue<DateTimeOffset>(reader.GetOrdinal("refreshed_at")), reader.GetDouble(reader.GetOrdinal("duration_ms")), began));
                }
            }

            // The refresher locks stay held by the transaction, as begin_refresh's would.
            await using var locks = new NpgsqlCommand("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid IN (9001, 9002)", connection, transaction);
            Assert.Equal(2L, await locks.ExecuteScalarAsync());
            await transaction.RollbackAsync();
            return rows;
        }

        await using var connection = await db.DataSource.OpenConnectionAsync();
        var rows = await CallAsync(connection);
        Assert.Equal([1L, 2L], rows.Select(r => r.N));
        Assert.All(rows, r =>
        {
            Assert.True(r.Ran <= r.At && r.Ms >= 0 && r.AsOf <= r.Ran, r.ToString());
            if (isolation == "repeatable read")
            {
                Assert.Equal(r.Began, r.AsOf); // the transaction's snapshot: what the calls saw
            }
            else
            {
                Assert.InRange(r.Ms - (r.At - r.AsOf).TotalMilliseconds, -0.01, 5); // data as of = its start
            }
        });
        Assert.True(rows[1].Ran >= rows[0].At, string.Join(", ", rows));
        if (isolation == "read committed")
        {
            Assert.True(rows[1].AsOf >= rows[0].At, string.Join(", ", rows)); // each call's own snapshot, taken after the one before
        }

        await using var holder = await db.DataSource.OpenConnectionAsync();
        await using var held = await holder.BeginTransactionAsync(); // released when the test ends
        await using (var hold = new NpgsqlCommand("SELECT pg_advisory_xact_lock(9002)", holder, held))
        {
            await hold.ExecuteNonQueryAsync(); // a refresh of the second target is running elsewhere
        }

        var busy = await Assert.ThrowsAsync<PostgresException>(() => CallAsync(connection));
        Assert.Equal("MVR01", busy.SqlState);
        Assert.Contains("9002", busy.MessageText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    public async Task A_target_requested_again_while_its_group_runs_is_handed_back_by_the_run_and_refreshed_again(int minIntervalMs)
    {
        // One run at a time; key 1 takes 600 ms. A request committed while it runs stays (the run did not cover it); the run
        // reads it just before its commit and hands it to the worker, with when it is due (with MinInterval, too: the state the
        // commit writes comes before it in the same round trip).
        var services = Instance(settle: TimeSpan.FromMilliseconds(100), maxConcurrentRuns: 1, minInterval: TimeSpan.FromMilliseconds(minIntervalMs));
        var queue = services.GetRequiredService<IRefreshQueue>();
        await db.ExecuteAsync("INSERT INTO q.slow VALUES (1, 0.6)");
        var worker = (DurableRefreshWorker)await StartWorkerAsync(services);
        await WriteAsync(queue, 1, 1);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%refresh_key%'") > 0,
            "key 1 refreshing");
        await WriteAsync(queue, 1, 2);
        await QuiescentAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM q.runs WHERE k = 1"));
        Assert.Equal(1L, worker.FollowUps);
    }

    [Fact]
    public async Task A_group_about_to_commit_sees_the_requests_that_came_during_its_run_and_when_each_target_is_next_due()
    {
        // A read passes over targets running when it starts: requests that came during a run are learned by the run itself,
        // just before its commit, so that they are started when due instead of when a later read finds them overdue.
        var sql = new DurableSql("matview_refresh");
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at) VALUES
                ('quiet', clock_timestamp() - interval '10 s'), ('busy', clock_timestamp() - interval '10 s'),
                ('backing-off', clock_timestamp() - interval '10 s');
            """);
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var claim = new NpgsqlCommand("DELETE FROM matview_refresh.refresh_requests", connection, transaction))
        {
            Assert.Equal(3, await claim.ExecuteNonQueryAsync()); // the run's claim (uncommitted)
        }

        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at) VALUES
                ('busy', clock_timestamp() - interval '500 ms'), ('busy', clock_timestamp()), ('backing-off', clock_timestamp()),
                ('unrelated', clock_timestamp() - interval '10 s');
            INSERT INTO matview_refresh.refresh_queue_state (target, failures, retry_at) VALUES ('backing-off', 1, clock_timestamp() + interval '30 s');
            """); // committed during the run

        await using var next = new NpgsqlCommand(sql.NextDue, connection, transaction);
        next.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = new[] { "quiet", "busy", "backing-off" } });
        next.Parameters.Add(new() { Value = TimeSpan.FromSeconds(2) });
        next.Parameters.Add(new() { Value = TimeSpan.FromSeconds(10) });
        next.Parameters.Add(new() { Value = TimeSpan.Zero });
        var due = new Dictionary<string, double>();
        await using (var reader = await next.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                due.Add(reader.GetString(0), reader.GetDouble(1));
            }
        }

        Assert.Equal(["backing-off", "busy"], due.Keys.Order());
        Assert.InRange(due["busy"], 1000, 2000); // settle delay after its newest request
        Assert.InRange(due["backing-off"], 25_000, 30_000); // its retry time
    }

    [Fact]
    public async Task Workers_reading_the_queue_list_disjoint_shares_covering_every_due_target_and_long_overdue_ones_whoever_s_share_they_are()
    {
        var sql = new DurableSql("matview_refresh");
        await db.ExecuteAsync("""
            INSERT INTO matview_refresh.refresh_requests (target, requested_at)
            SELECT 'key-' || g, clock_timestamp() - interval '2.5 s' FROM generate_series(1, 200) g;
            INSERT INTO matview_refresh.refresh_requests (target, requested_at) VALUES ('late', clock_timestamp() - interval '30 s'),
                ('new', clock_timestamp());
            """);
        var (low, high) = (Guid.Parse("00000000-0000-0000-0000-000000000001"), Guid.Parse("ffffffff-0000-0000-0000-000000000000"));

        // Alone, a worker lists everything due (then the first target not yet due).
        var alone = await ReadDueAsync(sql, low);
        Assert.Equal(202, alone.Count);
        Assert.Equal("new", alone[^1].Target);

        // Once the second has noted itself, each lists its share: none in both, none in neither, about half each; the target
        // overdue by more than the steal delay (5 s; 'late' is 28 s overdue) is listed by both, after the worker's own due ones.
        var second = await ReadDueAsync(sql, high);
        var first = await ReadDueAsync(sql, low);
        Assert.Contains(first, l => l.Target == "late");
        Assert.Contains(second, l => l.Target == "late");
        Assert.Single(first.Concat(second), l => l.Target == "new");
        var lateIsLows = await db.ScalarAsync<int>("SELECT (hashtext('late') & 2147483647) % 2") == 0;
        var stealing = lateIsLows ? second : first;
        Assert.True(
            stealing.FindIndex(l => l.Target == "late") == stealing.FindLastIndex(l => l.Target.StartsWith("key-", StringComparison.Ordinal)) + 1,
            "the stolen target comes after the worker's own due ones: " + string.Join(", ", stealing));
        foreach (var list in new[] { first, second })
        {
            Assert.Equal(list.Select(l => l.DueInMs < 0), list.Select(l => l.DueInMs < 0).OrderByDescending(due => due));
        }

        var firstKeys = first.Select(l => l.Target).Where(t => t.StartsWith("key-", StringComparison.Ordinal)).ToHashSet();
        var secondKeys = second.Select(l => l.Target).Where(t => t.StartsWith("key-", StringComparison.Ordinal)).ToHashSet();
        Assert.Empty(firstKeys.Intersect(secondKeys));
        Assert.Equal(200, firstKeys.Union(secondKeys).Count());
        Assert.InRange(firstKeys.Count, 60, 140);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));

        // A worker not seen for longer than the liveness window no longer counts: the other lists everything again.
        await db.ExecuteAsync("UPDATE matview_refresh.refresh_workers SET seen_at = clock_timestamp() - interval '11 s' WHERE worker = $1", high);
        Assert.Equal(202, (await ReadDueAsync(sql, low)).Count);
        await db.ExecuteAsync("UPDATE matview_refresh.refresh_workers SET seen_at = clock_timestamp() WHERE worker = $1", high);
        Assert.Equal(first.Count, (await ReadDueAsync(sql, low, note: false)).Count);

        // A worker leaving (as it stops) gives its share back at once; one gone for an hour is removed by the next note.
        await using (var leave = db.DataSource.CreateCommand(sql.Leave))
        {
            leave.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Uuid, Value = high });
            await leave.ExecuteNonQueryAsync();
        }

        Assert.Equal(202, (await ReadDueAsync(sql, low)).Count);
        await db.ExecuteAsync("INSERT INTO matview_refresh.refresh_workers VALUES (gen_random_uuid(), clock_timestamp() - interval '61 min')");
        await ReadDueAsync(sql, low, note: false);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));
        await ReadDueAsync(sql, low);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));
    }

    [Fact]
    public async Task A_stopping_worker_removes_itself_from_the_shares_and_two_running_workers_each_note_themselves()
    {
        var one = await StartWorkerAsync(Instance());
        var two = await StartWorkerAsync(Instance());
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers") == 2, "both workers to note themselves");

        await one.StopAsync(CancellationToken.None);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));
        await two.StopAsync(CancellationToken.None);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));
    }

    [Fact]
    public async Task With_ShareTargets_off_a_worker_takes_no_share_and_reads_every_due_target_beside_one_that_shares()
    {
        var services = Instance();
        var sharing = await StartWorkerAsync(services);
        await StartWorkerAsync(Instance(more: s => s.PostConfigure<MatViewRefreshOptions>(o => o.Durable.ShareTargets = false)));
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers") == 1, "the sharing worker to note itself");
        for (var key = 1; key <= 20; key++)
        {
            await WriteAsync(services.GetRequiredService<IRefreshQueue>(), key, key);
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests") == 0, "every target to be run");
        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_workers"));
        await sharing.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Without_the_refresh_workers_table_a_worker_says_so_once_and_runs_every_due_target_without_shares()
    {
        var logs = new RecordingLoggerProvider();
        var services = Instance(logs: logs, more: s => s.PostConfigure<MatViewRefreshOptions>(o => o.AutoCreateSchema = false));
        await db.ExecuteAsync("DROP TABLE matview_refresh.refresh_workers");
        await StartWorkerAsync(services);
        for (var key = 1; key <= 5; key++)
        {
            await WriteAsync(services.GetRequiredService<IRefreshQueue>(), key, key);
        }

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests") == 0, "every target to be run");
        Assert.Equal(0L, await db.ScalarAsync<long>(Mismatches));
        var said = Assert.Single(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.DurableSharesUnavailable);
        Assert.Contains("refresh_workers", said.Message);
        Assert.DoesNotContain(logs.Events, e => e.Id.Id == MatViewRefreshEventIds.DurablePollFailed);
    }

    /// <summary>The due read with shares as worker <paramref name="worker"/> (settle 2 s, MaxWait 10 s, MinInterval 0, poll interval 1 s).</summary>
    private async Task<List<(string Target, double DueInMs)>> ReadDueAsync(DurableSql sql, Guid worker, bool note = true, int dueLimit = 1000, int upcomingLimit = 1000)
    {
        await using var read = db.DataSource.CreateCommand(sql.Due);
        read.Parameters.Add(new() { Value = TimeSpan.FromSeconds(2) });
        read.Parameters.Add(new() { Value = TimeSpan.FromSeconds(10) });
        read.Parameters.Add(new() { Value = TimeSpan.Zero });
        read.Parameters.Add(new() { Value = dueLimit });
        read.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Uuid, Value = worker });
        read.Parameters.Add(new() { Value = DurableRefreshWorker.ShareLiveness(TimeSpan.FromSeconds(1)) });
        read.Parameters.Add(new() { Value = DurableRefreshWorker.StealAfter(TimeSpan.FromSeconds(1)) });
        read.Parameters.Add(new() { Value = note });
        read.Parameters.Add(new() { Value = upcomingLimit });
        await using var reader = await read.ExecuteReaderAsync();
        var listed = new List<(string Target, double DueInMs)>();
        while (await reader.ReadAsync())
        {
            listed.Add((reader.GetString(0), reader.GetDouble(1)));
        }

        return listed;
    }
}
