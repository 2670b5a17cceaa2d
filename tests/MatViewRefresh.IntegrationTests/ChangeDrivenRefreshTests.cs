using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>
/// Change capture and the durable worker together, end to end: a writer that knows nothing of the library (a plain
/// connection, as psql or an ETL script) changes a watched base table, and the worker refreshes the target — for a window
/// target, exactly the local days the writer touched.
/// </summary>
public sealed class ChangeDrivenRefreshTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private readonly List<ServiceProvider> _instances = [];
    private readonly List<IHostedService> _workers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.StopAsync(CancellationToken.None);
        }

        foreach (var services in _instances)
        {
            await services.DisposeAsync();
        }
    }

    /// <summary>An app instance with the durable worker running (polling every 50 ms, settling 20 ms).</summary>
    private async Task<ServiceProvider> StartInstanceAsync(string? connectionOptions = null)
    {
        var services = db.CreateServices(o =>
        {
            o.Durable.Enabled = true;
            o.Durable.PollInterval = TimeSpan.FromMilliseconds(50);
            o.Debounce.DelayMin = TimeSpan.FromMilliseconds(20);
            o.Debounce.DelayMax = TimeSpan.FromMilliseconds(20);
            o.Debounce.MaxWait = TimeSpan.FromMilliseconds(500);
            o.Debounce.MinInterval = TimeSpan.Zero;
        }, more: connectionOptions is null ? null : s => s.AddSingleton(NpgsqlDataSource.Create(db.ConnectionString + ";Options=" + connectionOptions)));
        _instances.Add(services);
        var worker = services.GetServices<IHostedService>().OfType<DurableRefreshWorker>().Single();
        await worker.StartAsync(CancellationToken.None);
        _workers.Add(worker);
        return services;
    }

    private async Task WriteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(db.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private Task WhenNoRequestsLeftAsync(string target) => DatabaseFixture.EventuallyAsync(
        async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target = $1", target) == 0,
        $"the requests of {target} to be run");

    [Fact]
    public async Task A_plain_backdated_insert_into_a_watched_table_recomputes_exactly_the_days_it_touched()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA e2e_days;
            CREATE TABLE e2e_days.sales (id serial PRIMARY KEY, day date NOT NULL, amount int NOT NULL);
            CREATE TABLE e2e_days.daily (day date PRIMARY KEY, total bigint NOT NULL);
            INSERT INTO e2e_days.sales (day, amount) SELECT d::date, 1 FROM generate_series('2025-01-01'::date, '2025-12-31'::date, '1 day') d;
            """);
        var services = await StartInstanceAsync();
        var target = RefreshTarget.Window("e2e_days.daily", "day", "SELECT day, sum(amount) FROM e2e_days.sales WHERE day >= @from AND day < @to GROUP BY day");
        Assert.True((await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full })).Success);
        await services.GetRequiredService<IRefreshWatcher>().WatchAsync(target);

        // A marker in a day nobody writes to: a run that recomputed more than the touched days would overwrite it.
        await db.ExecuteAsync("UPDATE e2e_days.daily SET total = -1 WHERE day = '2025-03-20'");
        await WriteAsync("INSERT INTO e2e_days.sales (day, amount) VALUES ('2025-03-01', 10), ('2025-03-02', 10), ('2025-03-09', 10), ('2025-07-04', 10)");
        await WhenNoRequestsLeftAsync("e2e_days.daily");

        Assert.Equal(
            "2025-03-01=11,2025-03-02=11,2025-03-09=11,2025-07-04=11",
            await db.ScalarAsync<string>("SELECT string_agg(to_char(day, 'YYYY-MM-DD') || '=' || total, ',' ORDER BY day) FROM e2e_days.daily WHERE total > 1"));
        Assert.Equal(-1L, await db.ScalarAsync<long>("SELECT total FROM e2e_days.daily WHERE day = '2025-03-20'"));
        Assert.Equal(
            "incremental (4 days: 2025-03-01..02, 2025-03-09, 2025-07-04)|queue",
            await db.ScalarAsync<string>("SELECT mode || '|' || trigger FROM matview_refresh.refresh_history WHERE target = 'e2e_days.daily' AND success ORDER BY id DESC LIMIT 1"));

        // TRUNCATE of the base table: a full recomputation (the marker goes too).
        await WriteAsync("TRUNCATE e2e_days.sales");
        await WhenNoRequestsLeftAsync("e2e_days.daily");
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_days.daily"));
        Assert.Equal(
            "full",
            await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_history WHERE target = 'e2e_days.daily' AND success ORDER BY id DESC LIMIT 1"));
    }

    [Fact]
    public async Task A_plain_insert_into_a_table_under_a_watched_materialized_view_refreshes_the_view()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA e2e_view;
            CREATE TABLE e2e_view.orders (id int PRIMARY KEY, amount int NOT NULL);
            CREATE VIEW e2e_view.paid AS SELECT id, amount FROM e2e_view.orders WHERE amount > 0;
            CREATE MATERIALIZED VIEW e2e_view.totals AS SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM e2e_view.paid;
            """);
        var services = await StartInstanceAsync();
        await services.GetRequiredService<IRefreshWatcher>().WatchAsync(RefreshTarget.View("e2e_view.totals"));

        await WriteAsync("INSERT INTO e2e_view.orders VALUES (1, 5), (2, 7), (3, -1)");

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<string>("SELECT n || '/' || total FROM e2e_view.totals") == "2/12",
            "the materialized view to reflect the insert");
        await WhenNoRequestsLeftAsync("e2e_view.totals");
        Assert.Equal("queue", await db.ScalarAsync<string>("SELECT trigger FROM matview_refresh.refresh_history WHERE target = 'e2e_view.totals' ORDER BY id DESC LIMIT 1"));
    }

    [Fact]
    public async Task An_open_ended_or_out_of_range_day_makes_one_full_refresh_and_never_blocks_its_target()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA e2e_far;
            CREATE TABLE e2e_far.sales (day date NOT NULL, amount int NOT NULL);
            CREATE TABLE e2e_far.daily (day date PRIMARY KEY, total bigint NOT NULL);
            """);
        var services = await StartInstanceAsync();
        var target = RefreshTarget.Window("e2e_far.daily", "day", "SELECT day, sum(amount) FROM e2e_far.sales WHERE day >= @from AND day < @to GROUP BY day");
        await services.GetRequiredService<IRefreshWatcher>().WatchAsync(target);

        // 9999-12-31, a common "open-ended" value, and a day .NET cannot hold: a full refresh covers them, not a failing run.
        await WriteAsync("INSERT INTO e2e_far.sales VALUES ('9999-12-31', 1), ('12000-01-01', 2), ('2025-03-01', 3)");
        await WhenNoRequestsLeftAsync("e2e_far.daily");
        Assert.Equal("full", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_history WHERE target = 'e2e_far.daily' AND success ORDER BY id DESC LIMIT 1"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_far.daily"));

        // The target keeps working: the next backdated day is recomputed exactly.
        await WriteAsync("INSERT INTO e2e_far.sales VALUES ('2025-03-02', 4)");
        await WhenNoRequestsLeftAsync("e2e_far.daily");
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT total FROM e2e_far.daily WHERE day = '2025-03-02'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_queue_state WHERE target = 'e2e_far.daily' AND failures > 0"));
    }

    [Fact]
    public async Task A_server_ending_idle_transactions_does_not_make_a_run_repeat()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA e2e_idle;
            CREATE TABLE e2e_idle.t (n int);
            CREATE FUNCTION e2e_idle.nap() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.8); RETURN 1; END $$;
            CREATE MATERIALIZED VIEW e2e_idle.slow AS SELECT count(*) AS n, max(e2e_idle.nap()) AS napped FROM e2e_idle.t;
            """);
        // The claim transaction waits idle while the refresh runs on another connection (0.8 s > the 300 ms limit).
        var services = await StartInstanceAsync("-c idle_in_transaction_session_timeout=300");
        await services.GetRequiredService<IRefreshWatcher>().WatchAsync(RefreshTarget.View("e2e_idle.slow"));

        await WriteAsync("INSERT INTO e2e_idle.t VALUES (1)");
        await WhenNoRequestsLeftAsync("e2e_idle.slow");

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT n FROM e2e_idle.slow"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'e2e_idle.slow' AND trigger = 'queue'"));
    }
}

