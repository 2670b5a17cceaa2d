using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

public sealed class ChangeCaptureTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private const string Triggers = "matview_refresh_capture_insert,matview_refresh_capture_update,matview_refresh_capture_delete,matview_refresh_capture_truncate";

    private IRefreshWatcher Watcher(ServiceProvider? services = null) => (services ?? db.CreateServices()).GetRequiredService<IRefreshWatcher>();

    /// <summary>Writes through a plain connection, as psql or an ETL script would: no library code involved.</summary>
    private async Task WriteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(db.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The requests for a target, oldest first, as <c>first..last</c>, <c>-</c> (no days) or <c>full</c>.</summary>
    private Task<string> RequestsAsync(string target) => db.ScalarAsync<string>("""
        SELECT coalesce(string_agg(CASE WHEN full_refresh THEN 'full' WHEN first_day IS NULL THEN '-'
                                        ELSE to_char(first_day, 'MM-DD') || '..' || to_char(last_day, 'MM-DD') END, ' ' ORDER BY requested_at, first_day), '')
          FROM matview_refresh.refresh_requests WHERE target = $1 AND source = 'trigger'
        """, target);

    private Task<string> TriggersOnAsync(string table) => db.ScalarAsync<string>(
        "SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", table);

    private Task ClearRequestsAsync() => db.ExecuteAsync("DELETE FROM matview_refresh.refresh_requests");

    [Fact]
    public async Task Watching_a_view_over_a_view_over_a_table_installs_the_triggers_on_the_table_and_a_plain_insert_requests_a_refresh()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA layered;
            CREATE TABLE layered.orders (id int PRIMARY KEY, amount int);
            CREATE VIEW layered.v1 AS SELECT id, amount FROM layered.orders WHERE amount > 0;
            CREATE VIEW layered.v2 AS SELECT count(*) AS n, sum(amount) AS total FROM layered.v1;
            CREATE MATERIALIZED VIEW layered.totals AS SELECT * FROM layered.v2;
            """);

        var watch = await Watcher().WatchAsync(RefreshTarget.View("layered.totals"));

        Assert.Equal("layered.totals", watch.Target);
        var table = Assert.Single(watch.Tables);
        Assert.Equal(new QualifiedName("layered", "orders"), table.Table);
        Assert.Null(table.DayColumn);
        Assert.Equal(string.Join(',', Triggers.Split(',').Order(StringComparer.Ordinal)), await TriggersOnAsync("layered.orders"));
        Assert.Equal(string.Empty, await TriggersOnAsync("layered.v1"));

        await WriteAsync("INSERT INTO layered.orders VALUES (1, 5), (2, 7)");
        await WriteAsync("UPDATE layered.orders SET amount = amount + 1");
        await WriteAsync("DELETE FROM layered.orders WHERE id = 42");
        Assert.Equal("- -", await RequestsAsync("layered.totals"));
        await WriteAsync("TRUNCATE layered.orders");
        Assert.Equal("- - full", await RequestsAsync("layered.totals"));
    }

    [Fact]
    public async Task Watch_and_unwatch_are_idempotent_and_unwatching_drops_the_triggers_and_stops_the_requests()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA idem;
            CREATE TABLE idem."Order Lines" (id int, qty int);
            CREATE MATERIALIZED VIEW idem."Line Totals" AS SELECT sum(qty) AS qty FROM idem."Order Lines";
            """);
        var watcher = Watcher();
        var target = RefreshTarget.View("idem", "Line Totals");

        var first = await watcher.WatchAsync(target);
        var second = await watcher.WatchAsync(target);

        Assert.Equal(first.Target, second.Target);
        Assert.Equal(first.Tables, second.Tables);
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'idem.\"Order Lines\"'::regclass AND NOT tgisinternal"));
        var listed = Assert.Single(await watcher.ListAsync(), w => w.Target == "idem.\"Line Totals\"");
        Assert.True(Assert.Single(listed.Tables).TriggersInstalled);
        await WriteAsync("INSERT INTO idem.\"Order Lines\" VALUES (1, 2)");
        Assert.Equal("-", await RequestsAsync("idem.\"Line Totals\""));

        Assert.True(await watcher.UnwatchAsync(target));
        Assert.False(await watcher.UnwatchAsync(target));

        Assert.Equal(string.Empty, await TriggersOnAsync("idem.\"Order Lines\""));
        Assert.DoesNotContain(await watcher.ListAsync(), w => w.Target == "idem.\"Line Totals\"");
        await WriteAsync("INSERT INTO idem.\"Order Lines\" VALUES (2, 3)");
        Assert.Equal("-", await RequestsAsync("idem.\"Line Totals\""));
    }

    [Fact]
    public async Task Watching_again_after_the_view_changed_moves_the_triggers_to_the_tables_it_reads_now()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA moved;
            CREATE TABLE moved.old_source (id int);
            CREATE TABLE moved.new_source (id int);
            CREATE MATERIALIZED VIEW moved.mv AS SELECT count(*) FROM moved.old_source;
            """);
        var watcher = Watcher();
        await watcher.WatchAsync(RefreshTarget.View("moved.mv"));
        var function = await db.ScalarAsync<string>(
            "SELECT p.proname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = 'moved.old_source'::regclass AND NOT t.tgisinternal LIMIT 1");

        await db.ExecuteAsync("DROP MATERIALIZED VIEW moved.mv; CREATE MATERIALIZED VIEW moved.mv AS SELECT count(*) FROM moved.new_source");
        var watch = await watcher.WatchAsync(RefreshTarget.View("moved.mv"));

        Assert.Equal(new QualifiedName("moved", "new_source"), Assert.Single(watch.Tables).Table);
        Assert.Equal(string.Empty, await TriggersOnAsync("moved.old_source"));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'moved.new_source'::regclass AND NOT tgisinternal"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_proc WHERE proname = $1", function));
        await WriteAsync("INSERT INTO moved.old_source VALUES (1)");
        Assert.Equal(string.Empty, await RequestsAsync("moved.mv"));
        await WriteAsync("INSERT INTO moved.new_source VALUES (1)");
        Assert.Equal("-", await RequestsAsync("moved.mv"));
    }

    [Fact]
    public async Task A_window_target_records_the_distinct_runs_of_local_days_changed_and_null_days_for_a_table_without_its_column()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA win_cc;
            CREATE TABLE win_cc.products (id int PRIMARY KEY, price int NOT NULL);
            CREATE TABLE win_cc.sales (id int PRIMARY KEY, day date NOT NULL, product int NOT NULL, qty int NOT NULL);
            CREATE TABLE win_cc.daily (day date PRIMARY KEY, revenue bigint NOT NULL);
            INSERT INTO win_cc.products VALUES (1, 10), (2, 20);
            """);
        var target = RefreshTarget.Window("win_cc.daily", "day", """
            SELECT s.day, sum(s.qty * p.price) FROM win_cc.sales s JOIN win_cc.products p ON p.id = s.product
            WHERE s.day >= @from AND s.day < @to GROUP BY s.day
            """);

        var watch = await Watcher().WatchAsync(target);

        Assert.Equal(
            "win_cc.products:,win_cc.sales:day",
            string.Join(",", watch.Tables.Select(t => $"{t.Table}:{t.DayColumn}")));
        Assert.Equal(string.Empty, await TriggersOnAsync("win_cc.daily"));

        // Disjoint days in one statement: one request per contiguous run, not min..max.
        await WriteAsync("INSERT INTO win_cc.sales VALUES (1, '2026-03-01', 1, 1), (2, '2026-03-02', 1, 1), (3, '2026-03-03', 2, 1), (4, '2026-03-07', 1, 1), (5, '2026-03-02', 2, 4)");
        Assert.Equal("03-01..03-03 03-07..03-07", await RequestsAsync("win_cc.daily"));

        // An update moving a row records its old and its new day; a delete, the deleted row's day.
        await ClearRequestsAsync();
        await WriteAsync("UPDATE win_cc.sales SET day = '2026-03-20' WHERE id = 4");
        await WriteAsync("DELETE FROM win_cc.sales WHERE id = 1");
        await WriteAsync("UPDATE win_cc.sales SET qty = 9 WHERE id = 999");
        Assert.Equal("03-07..03-07 03-20..03-20 03-01..03-01", await RequestsAsync("win_cc.daily"));

        // The dimension has no day column: a change to it requests the usual refresh; TRUNCATE a full one.
        await ClearRequestsAsync();
        await WriteAsync("UPDATE win_cc.products SET price = 11 WHERE id = 1");
        await WriteAsync("TRUNCATE win_cc.sales");
        Assert.Equal("- full", await RequestsAsync("win_cc.daily"));
    }

    [Fact]
    public async Task A_timestamptz_column_records_local_days_in_the_watchs_time_zone()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA tz_cc;
            CREATE TABLE tz_cc.events (at timestamptz NOT NULL, amount int NOT NULL);
            CREATE TABLE tz_cc.daily (at date PRIMARY KEY, total bigint NOT NULL);
            """);
        var target = RefreshTarget.Window("tz_cc.daily", "at", """
            SELECT (at AT TIME ZONE 'America/Chicago')::date, sum(amount) FROM tz_cc.events
            WHERE (at AT TIME ZONE 'America/Chicago')::date >= @from AND (at AT TIME ZONE 'America/Chicago')::date < @to GROUP BY 1
            """);

        var watch = await Watcher().WatchAsync(target, "America/Chicago");

        Assert.Equal("America/Chicago", Assert.Single(watch.Tables).TimeZone);

        // 03:30 UTC on 2 March is still 1 March in Chicago; 06:30 UTC is 2 March.
        await WriteAsync("INSERT INTO tz_cc.events VALUES ('2026-03-02 03:30Z', 1)");
        await WriteAsync("INSERT INTO tz_cc.events VALUES ('2026-03-02 06:30Z', 1)");
        Assert.Equal("03-01..03-01 03-02..03-02", await RequestsAsync("tz_cc.daily"));
    }

    [Fact]
    public async Task A_rolled_back_write_leaves_no_request()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA rb;
            CREATE TABLE rb.t (id int);
            CREATE MATERIALIZED VIEW rb.mv AS SELECT count(*) FROM rb.t;
            """);
        await Watcher().WatchAsync(RefreshTarget.View("rb.mv"));

        await using (var connection = new NpgsqlConnection(db.ConnectionString))
        {
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using var command = new NpgsqlCommand("INSERT INTO rb.t VALUES (1); TRUNCATE rb.t", connection, transaction);
            await command.ExecuteNonQueryAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM matview_refresh.refresh_requests WHERE target = 'rb.mv'", connection, transaction);
            Assert.Equal(2L, (long)(await count.ExecuteScalarAsync())!);
            await transaction.RollbackAsync();
        }

        Assert.Equal(string.Empty, await RequestsAsync("rb.mv"));
    }

    [Fact]
    public async Task A_writer_without_any_privilege_on_the_log_schema_still_records_its_requests()
    {
        var role = "capture_writer_" + Guid.NewGuid().ToString("N")[..8];
        await db.ExecuteAsync($"""
            CREATE SCHEMA priv;
            CREATE TABLE priv.t (id int);
            CREATE MATERIALIZED VIEW priv.mv AS SELECT count(*) FROM priv.t;
            CREATE ROLE {role} LOGIN PASSWORD 'pw';
            GRANT USAGE ON SCHEMA priv TO {role};
            GRANT INSERT ON priv.t TO {role};
            """);
        await Watcher().WatchAsync(RefreshTarget.View("priv.mv"));

        var asWriter = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role, Password = "pw" }.ConnectionString;
        await using (var connection = new NpgsqlConnection(asWriter))
        {
            await connection.OpenAsync();
            await using var denied = new NpgsqlCommand("SELECT count(*) FROM matview_refresh.refresh_requests", connection);
            Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => denied.ExecuteScalarAsync())).SqlState);
            await using var insert = new NpgsqlCommand("INSERT INTO priv.t VALUES (1)", connection);
            await insert.ExecuteNonQueryAsync();
        }

        Assert.Equal("-", await RequestsAsync("priv.mv"));
    }

    [Fact]
    public async Task Two_targets_share_a_tables_triggers_and_unwatching_one_keeps_the_other_watching()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA shared;
            CREATE TABLE shared.t (id int);
            CREATE FUNCTION shared.big_ids() RETURNS bigint LANGUAGE sql STABLE RETURN (SELECT count(*) FROM shared.t WHERE id > 100);
            CREATE MATERIALIZED VIEW shared.a AS SELECT count(*) FROM shared.t;
            CREATE MATERIALIZED VIEW shared.b AS SELECT shared.big_ids() AS big;
            """);
        var watcher = Watcher();

        await watcher.WatchAsync(RefreshTarget.View("shared.a"));
        var b = await watcher.WatchAsync(RefreshTarget.View("shared.b"));

        // b reads the table only through a function with a SQL-standard body.
        Assert.Equal(new QualifiedName("shared", "t"), Assert.Single(b.Tables).Table);
        await WriteAsync("INSERT INTO shared.t VALUES (1)");
        Assert.Equal(("-", "-"), (await RequestsAsync("shared.a"), await RequestsAsync("shared.b")));

        Assert.True(await watcher.UnwatchAsync(RefreshTarget.View("shared.a")));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shared.t'::regclass AND NOT tgisinternal"));
        await WriteAsync("INSERT INTO shared.t VALUES (2)");
        Assert.Equal(("-", "- -"), (await RequestsAsync("shared.a"), await RequestsAsync("shared.b")));
    }

    [Fact]
    public async Task A_function_target_with_a_sql_standard_body_is_watched_on_the_tables_it_reads_and_requests_carry_its_scope()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA fx;
            CREATE TABLE fx.visits (day date, n int);
            CREATE FUNCTION fx.visits_on(day date) RETURNS bigint LANGUAGE sql STABLE RETURN (SELECT sum(n) FROM fx.visits v WHERE v.day = visits_on.day);
            """);
        var target = RefreshTarget.Function("fx.visits_on", ("day", new DateOnly(2026, 3, 1)));

        var watch = await Watcher().WatchAsync(target);

        Assert.Equal("fx.visits_on(day=2026-03-01)", watch.Target);
        Assert.Equal(new QualifiedName("fx", "visits"), Assert.Single(watch.Tables).Table);
        await WriteAsync("INSERT INTO fx.visits VALUES ('2026-03-01', 3)");
        Assert.Equal("-", await RequestsAsync("fx.visits_on(day=2026-03-01)"));
    }

    [Fact]
    public async Task Targets_that_do_not_exist_or_read_no_recorded_table_are_refused_naming_them_and_nothing_is_installed()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA bad;
            CREATE MATERIALIZED VIEW bad.constant AS SELECT 1 AS one;
            """);
        var watcher = Watcher();

        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => watcher.WatchAsync(RefreshTarget.View("bad.nope")));
        var constant = await Assert.ThrowsAsync<InvalidOperationException>(() => watcher.WatchAsync(RefreshTarget.View("bad.constant")));
        var noTable = await Assert.ThrowsAsync<InvalidOperationException>(
            () => watcher.WatchAsync(RefreshTarget.Window("bad.missing", "day", "SELECT 1 WHERE @from < @to")));
        var zone = await Assert.ThrowsAsync<ArgumentException>(() => watcher.WatchAsync(RefreshTarget.View("bad.constant"), "Mars/Olympus"));

        Assert.Contains("bad.nope", missing.Message, StringComparison.Ordinal);
        Assert.Contains("bad.constant", constant.Message, StringComparison.Ordinal);
        Assert.Contains("no base table", constant.Message, StringComparison.Ordinal);
        Assert.Contains("bad.missing", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("Mars/Olympus", zone.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.watches WHERE target LIKE 'bad.%'"));
    }

    [Fact]
    public async Task Targets_in_MatViewRefresh_Watch_are_watched_when_the_host_starts()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA configured;
            CREATE TABLE configured.t (day date, n int);
            CREATE MATERIALIZED VIEW configured.mv AS SELECT count(*) FROM configured.t;
            CREATE TABLE configured.daily (day date PRIMARY KEY, n bigint);
            """);
        using var services = db.CreateServices(o =>
        {
            o.Watch.Views.Add("configured.mv");
            o.Watch.Windows.Add(new RefreshScheduleWindow
            {
                Table = "configured.daily", DateColumn = "day", Query = "SELECT day, sum(n) FROM configured.t WHERE day >= @from AND day < @to GROUP BY day",
            });
        });

        await services.GetServices<IHostedService>().OfType<WatchHostedService>().Single().StartAsync(CancellationToken.None);

        Assert.Equal(
            ["configured.daily", "configured.mv"],
            (await services.GetRequiredService<IRefreshWatcher>().ListAsync()).Select(w => w.Target).Where(t => t.StartsWith("configured.", StringComparison.Ordinal)).ToArray());
        await WriteAsync("INSERT INTO configured.t VALUES ('2026-05-05', 1)");
        Assert.Equal(("-", "05-05..05-05"), (await RequestsAsync("configured.mv"), await RequestsAsync("configured.daily")));
    }

    [Fact]
    public async Task A_target_reading_another_materialized_view_is_refused_naming_it_and_nothing_is_installed()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA chained;
            CREATE TABLE chained.t (n int);
            CREATE MATERIALIZED VIEW chained.mv1 AS SELECT coalesce(sum(n), 0) AS s FROM chained.t;
            CREATE VIEW chained.v AS SELECT s * 2 AS d FROM chained.mv1;
            CREATE MATERIALIZED VIEW chained.mv2 AS SELECT d FROM chained.v;
            """);

        // A REFRESH of mv1 fires no trigger: watching mv2 on t would refresh it from mv1's old rows and lose the request.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => Watcher().WatchAsync(RefreshTarget.View("chained.mv2")));

        Assert.Contains("chained.mv2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("materialized view(s) chained.mv1", refused.Message, StringComparison.Ordinal);
        Assert.Equal(string.Empty, await TriggersOnAsync("chained.t"));
        Assert.Equal("chained.mv1", (await Watcher().WatchAsync(RefreshTarget.View("chained.mv1"))).Target);
    }

    [Fact]
    public async Task A_renamed_or_retyped_day_column_never_fails_the_writers_statement_and_requests_a_full_refresh()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA drift;
            CREATE TABLE drift.sales (id int, day date NOT NULL, qty int NOT NULL);
            CREATE TABLE drift.daily (day date PRIMARY KEY, qty bigint NOT NULL);
            """);
        await Watcher().WatchAsync(RefreshTarget.Window("drift.daily", "day", "SELECT day, sum(qty) FROM drift.sales WHERE day >= @from AND day < @to GROUP BY day"));
        await WriteAsync("INSERT INTO drift.sales VALUES (1, '2026-04-01', 1)");
        Assert.Equal("04-01..04-01", await RequestsAsync("drift.daily"));

        await db.ExecuteAsync("ALTER TABLE drift.sales RENAME COLUMN day TO sold_on");
        await WriteAsync("INSERT INTO drift.sales VALUES (2, '2026-04-02', 1)");
        await db.ExecuteAsync("ALTER TABLE drift.sales RENAME COLUMN sold_on TO day; ALTER TABLE drift.sales ALTER COLUMN day TYPE timestamptz");
        await WriteAsync("UPDATE drift.sales SET qty = 2 WHERE id = 1");
        await WriteAsync("DELETE FROM drift.sales WHERE id = 999");

        Assert.Equal("04-01..04-01 full full", await RequestsAsync("drift.daily"));
    }

    [Fact]
    public async Task Watching_again_unchanged_takes_no_table_lock_so_an_open_write_neither_blocks_it_nor_is_blocked()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA rewatch;
            CREATE TABLE rewatch.t (n int);
            CREATE MATERIALIZED VIEW rewatch.mv AS SELECT count(*) AS n FROM rewatch.t;
            """);
        var watcher = Watcher();
        await watcher.WatchAsync(RefreshTarget.View("rewatch.mv"));

        // A writer's transaction is open on the table (as at any instance start in production).
        await using var writer = new NpgsqlConnection(db.ConnectionString);
        await writer.OpenAsync();
        await using var transaction = await writer.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO rewatch.t VALUES (1)", writer, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }

        var again = await watcher.WatchAsync(RefreshTarget.View("rewatch.mv")).WaitAsync(TimeSpan.FromSeconds(15));

        Assert.True(Assert.Single(again.Tables).TriggersInstalled);
        await transaction.CommitAsync();
        Assert.Equal("-", await RequestsAsync("rewatch.mv"));
    }

    [Fact]
    public async Task A_configured_window_that_cannot_be_watched_at_start_is_still_resolvable_by_this_instances_worker()
    {
        using var services = db.CreateServices(o =>
        {
            o.Watch.TimeZone = "Europe/Berlin";
            o.Watch.Windows.Add(new RefreshScheduleWindow
            {
                Table = "later.daily", DateColumn = "day", Query = "SELECT day, count(*) FROM later.t WHERE day >= @from AND day < @to GROUP BY day",
            });
        });

        // later.daily does not exist yet: the watch fails (logged), the host starts, and the target is known to the queue.
        await services.GetServices<IHostedService>().OfType<WatchHostedService>().Single().StartAsync(CancellationToken.None);

        var registration = services.GetRequiredService<RefreshQueue>().Resolve("later.daily");
        Assert.NotNull(registration);
        Assert.Equal(RefreshTargetKind.Window, registration.Target.Kind);
        Assert.Equal("Europe/Berlin", registration.Options?.TimeZone);
    }
}

