using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class WindowTargetTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private const string Chicago = "America/Chicago";
    private static readonly TimeZoneInfo Zone = TimeZoneInfo.FindSystemTimeZoneById(Chicago);

    private static DateOnly Today => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, Zone).DateTime);

    /// <summary>The instant of a local time in Chicago.</summary>
    private static DateTimeOffset Local(DateOnly day, int hour, int minute = 0) =>
        new(TimeZoneInfo.ConvertTimeToUtc(day.ToDateTime(new TimeOnly(hour, minute)), Zone), TimeSpan.Zero);

    private async Task<IMaterializedViewRefresher> FactsAsync(string facts)
    {
        await db.ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS win; CREATE TABLE win.{facts} (id serial PRIMARY KEY, at timestamptz NOT NULL, amount int NOT NULL)");
        return db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();
    }

    private Task AddFactAsync(string facts, DateTimeOffset at, int amount) =>
        db.ExecuteAsync($"INSERT INTO win.{facts} (at, amount) VALUES ($1, $2)", at, amount);

    [Fact]
    public async Task Incremental_replaces_exactly_the_last_days_of_a_date_column_counted_in_the_zone()
    {
        var refresher = await FactsAsync("facts_d");
        await db.ExecuteAsync("CREATE TABLE win.\"Daily D\" (\"Day\" date PRIMARY KEY, total bigint NOT NULL)");
        var today = Today;
        foreach (var back in new[] { 0, 1, 2, 5 })
        {
            await AddFactAsync("facts_d", Local(today.AddDays(-back), 0, 30), 10 + back);
            await AddFactAsync("facts_d", Local(today.AddDays(-back), 23, 30), 100);
            await db.ExecuteAsync("INSERT INTO win.\"Daily D\" VALUES ($1, -1)", today.AddDays(-back));
        }

        // The README's example: @from and @to are dates here, turned into the zone's midnights to use an index on the facts.
        var target = RefreshTarget.Window("win.\"Daily D\"", "Day", $"""
            SELECT (at AT TIME ZONE '{Chicago}')::date AS day, sum(amount)
            FROM win.facts_d
            WHERE at >= (@from::timestamp AT TIME ZONE '{Chicago}') AND at < (@to::timestamp AT TIME ZONE '{Chicago}')
            GROUP BY 1
            """);
        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Incremental, TimeZone = Chicago });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(WindowStrategy.Incremental, result.StrategyUsed);
        Assert.Equal("incremental requested", result.ModeReason);
        Assert.Equal((2L, 2L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal(110L, await db.ScalarAsync<long>("SELECT total FROM win.\"Daily D\" WHERE \"Day\" = $1", today));
        Assert.Equal(111L, await db.ScalarAsync<long>("SELECT total FROM win.\"Daily D\" WHERE \"Day\" = $1", today.AddDays(-1)));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM win.\"Daily D\" WHERE total = -1 AND \"Day\" IN ($1, $2)", today.AddDays(-2), today.AddDays(-5)));
        Assert.Equal("incremental", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_log WHERE target = 'win.\"Daily D\"'"));
    }

    [Fact]
    public async Task Incremental_on_a_timestamptz_column_is_bounded_by_the_zones_local_midnights_not_utc()
    {
        var refresher = await FactsAsync("facts_t");
        await db.ExecuteAsync("CREATE TABLE win.hourly_t (hour timestamptz PRIMARY KEY, total bigint NOT NULL)");
        var today = Today;

        // 23:30 local two days ago is after midnight UTC, so a UTC window would wrongly include it.
        var outside = Local(today.AddDays(-2), 23, 30);
        var inside = Local(today.AddDays(-1), 0, 30);
        var latest = Local(today, 0, 10);
        foreach (var at in new[] { outside, inside, latest })
        {
            await AddFactAsync("facts_t", at, 5);
            await db.ExecuteAsync("INSERT INTO win.hourly_t VALUES (date_trunc('hour', $1::timestamptz), -1)", at);
        }

        var target = RefreshTarget.Window("win.hourly_t", "hour",
            "SELECT date_trunc('hour', at), sum(amount) FROM win.facts_t WHERE at >= @from AND at < @to GROUP BY 1");
        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Incremental, TimeZone = Chicago, Days = 2 });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal((2L, 2L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal(-1L, await db.ScalarAsync<long>("SELECT total FROM win.hourly_t WHERE hour = date_trunc('hour', $1::timestamptz)", outside));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT total FROM win.hourly_t WHERE hour = date_trunc('hour', $1::timestamptz)", inside));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT total FROM win.hourly_t WHERE hour = date_trunc('hour', $1::timestamptz)", latest));
    }

    [Fact]
    public async Task Full_rebuilds_the_whole_table_and_reports_rows_deleted_and_inserted()
    {
        var refresher = await FactsAsync("facts_f");
        await db.ExecuteAsync("CREATE TABLE win.daily_f (day date, total bigint)");
        await db.ExecuteAsync("INSERT INTO win.daily_f VALUES ('2001-01-01', 1), ('2024-05-05', 2), (NULL, 3)");
        await AddFactAsync("facts_f", DateTimeOffset.Parse("2020-03-04T12:00:00Z"), 7);
        await AddFactAsync("facts_f", DateTimeOffset.Parse("2020-03-04T13:00:00Z"), 8);
        await AddFactAsync("facts_f", DateTimeOffset.Parse("2023-01-01T13:00:00Z"), 9);

        var target = RefreshTarget.Window("win.daily_f", "day",
            "SELECT (at AT TIME ZONE 'UTC')::date, sum(amount) FROM win.facts_f WHERE at >= @from AND at < @to GROUP BY 1;");
        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(WindowStrategy.Full, result.StrategyUsed);
        Assert.Equal((3L, 2L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal(
            "2020-03-04=15,2023-01-01=9",
            await db.ScalarAsync<string>("SELECT string_agg(day || '=' || total, ',' ORDER BY day) FROM win.daily_f"));
        Assert.Equal("full", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_history WHERE target = 'win.daily_f'"));
    }

    [Fact]
    public async Task Smart_runs_full_first_then_incremental_then_full_again_after_FullRefreshAfter()
    {
        var refresher = await FactsAsync("facts_s");
        await db.ExecuteAsync("CREATE TABLE win.daily_s (day date, total bigint)");
        await AddFactAsync("facts_s", DateTimeOffset.UtcNow.AddHours(-3), 4);
        var target = RefreshTarget.Window("win.daily_s", "day",
            "SELECT (at AT TIME ZONE 'UTC')::date, sum(amount) FROM win.facts_s WHERE (at AT TIME ZONE 'UTC')::date >= @from AND (at AT TIME ZONE 'UTC')::date < @to GROUP BY 1");

        var first = await refresher.RefreshAsync(target);
        var second = await refresher.RefreshAsync(target);
        // The database clock cannot be faked: age the log's full refreshes instead.
        await db.ExecuteAsync("UPDATE matview_refresh.refresh_history SET started_at = started_at - interval '26 hours' WHERE target = 'win.daily_s'");
        var third = await refresher.RefreshAsync(target);
        var fourth = await refresher.RefreshAsync(target, new RefreshOptions { FullRefreshAfter = TimeSpan.FromMinutes(1) });

        Assert.All([first, second, third, fourth], r => Assert.True(r.Success, r.Error?.ToString()));
        Assert.Equal(WindowStrategy.Full, first.StrategyUsed);
        Assert.Equal("smart chose full: no full refresh in the log; the table is empty", first.ModeReason);
        Assert.Equal(WindowStrategy.Incremental, second.StrategyUsed);
        Assert.StartsWith("smart chose incremental: last full refresh 0 min ago ≤ 24 h; newest data ", second.ModeReason, StringComparison.Ordinal);
        Assert.Equal(WindowStrategy.Full, third.StrategyUsed);
        Assert.StartsWith("smart chose full: last full refresh 26 h ago > 24 h; newest data ", third.ModeReason, StringComparison.Ordinal);
        Assert.Equal(WindowStrategy.Incremental, fourth.StrategyUsed);
        Assert.StartsWith("smart chose incremental: last full refresh 0 min ago ≤ 1 min", fourth.ModeReason, StringComparison.Ordinal);
        Assert.Equal(
            "full,incremental,full,incremental",
            await db.ScalarAsync<string>("SELECT string_agg(mode, ',' ORDER BY id) FROM matview_refresh.refresh_history WHERE target = 'win.daily_s'"));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT total FROM win.daily_s"));
    }

    [Fact]
    public async Task A_failed_window_refresh_is_recorded_and_a_missing_column_named()
    {
        var refresher = await FactsAsync("facts_e");
        await db.ExecuteAsync("CREATE TABLE win.daily_e (day date, total bigint)");
        var target = RefreshTarget.Window("win.daily_e", "no_such_day", "SELECT now()::date, 1 WHERE now() >= @from AND now() < @to");

        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Incremental });

        Assert.False(result.Success);
        Assert.Equal("42703", result.Error!.SqlState);
        Assert.Contains("no_such_day", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal("window", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_history WHERE target = 'win.daily_e' AND NOT success"));
    }

    [Fact]
    public async Task After_any_sequence_of_refreshes_the_window_or_the_whole_mart_equals_a_recomputation()
    {
        var refresher = await FactsAsync("facts_p");
        await db.ExecuteAsync("CREATE TABLE win.daily_p (day date NOT NULL, n bigint NOT NULL, total bigint NOT NULL); CREATE TABLE win.before_p (LIKE win.daily_p)");
        const string recompute = $"""
            SELECT (at AT TIME ZONE '{Chicago}')::date AS day, count(*) AS n, sum(amount) AS total
            FROM win.facts_p WHERE (at AT TIME ZONE '{Chicago}')::date >= @from AND (at AT TIME ZONE '{Chicago}')::date < @to
            GROUP BY 1
            """;
        var target = RefreshTarget.Window("win.daily_p", "day", recompute);
        var random = new Random(20251123);
        var ids = new List<int>();
        var today = Today;
        DateTimeOffset AnyTime() => Local(today.AddDays(-random.Next(0, 8)), random.Next(0, 24), random.Next(0, 60));

        for (var round = 0; round < 60; round++)
        {
            for (var change = random.Next(1, 6); change > 0; change--)
            {
                var kind = ids.Count == 0 ? 0 : random.Next(3);
                if (kind == 0)
                {
                    ids.Add(await db.ScalarAsync<int>("INSERT INTO win.facts_p (at, amount) VALUES ($1, $2) RETURNING id", AnyTime(), random.Next(1, 100)));
                }
                else if (kind == 1)
                {
                    await db.ExecuteAsync("UPDATE win.facts_p SET at = $2, amount = $3 WHERE id = $1", ids[random.Next(ids.Count)], AnyTime(), random.Next(1, 100));
                }
                else
                {
                    var index = random.Next(ids.Count);
                    await db.ExecuteAsync("DELETE FROM win.facts_p WHERE id = $1", ids[index]);
                    ids.RemoveAt(index);
                }
            }

            var full = random.Next(5) == 0;
            var days = random.Next(1, 4);
            await db.ExecuteAsync("TRUNCATE win.before_p; INSERT INTO win.before_p SELECT * FROM win.daily_p");
            var result = await refresher.RefreshAsync(target, new RefreshOptions
            {
                Strategy = full ? WindowStrategy.Full : WindowStrategy.Incremental, Days = days, TimeZone = Chicago,
            });
            Assert.True(result.Success, result.Error?.ToString());

            var (from, to) = full ? (DateOnly.MinValue, DateOnly.MaxValue) : (today.AddDays(1 - days), today.AddDays(1));
            var expected = recompute.Replace("@from", "$1", StringComparison.Ordinal).Replace("@to", "$2", StringComparison.Ordinal);
            var window = "SELECT * FROM win.daily_p WHERE day >= $1 AND day < $2";
            Assert.True(
                0L == await db.ScalarAsync<long>($"SELECT count(*) FROM (({window} EXCEPT ALL {expected}) UNION ALL ({expected} EXCEPT ALL {window})) d", from, to),
                $"round {round} ({(full ? "full" : $"incremental, {days} days")}): the mart's window differs from a recomputation");
            Assert.True(
                0L == await db.ScalarAsync<long>("""
                    SELECT count(*) FROM (
                        (SELECT * FROM win.daily_p WHERE NOT (day >= $1 AND day < $2) EXCEPT ALL SELECT * FROM win.before_p WHERE NOT (day >= $1 AND day < $2))
                        UNION ALL
                        (SELECT * FROM win.before_p WHERE NOT (day >= $1 AND day < $2) EXCEPT ALL SELECT * FROM win.daily_p WHERE NOT (day >= $1 AND day < $2))) d
                    """, from, to),
                $"round {round}: rows outside the window changed");
        }

        // Finally a full refresh makes the whole mart equal to the facts.
        Assert.True((await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full })).Success);
        var all = recompute.Replace("@from", "'-infinity'::date", StringComparison.Ordinal).Replace("@to", "'infinity'::date", StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM ((TABLE win.daily_p EXCEPT ALL {all}) UNION ALL ({all} EXCEPT ALL TABLE win.daily_p)) d"));
    }

    [Fact]
    public async Task A_data_modifying_with_query_passes_the_shape_check_but_the_server_refuses_it_and_nothing_changes()
    {
        var refresher = await FactsAsync("facts_w");
        await AddFactAsync("facts_w", DateTimeOffset.UtcNow, 1);
        await db.ExecuteAsync("CREATE TABLE win.daily_w (day date, total bigint); INSERT INTO win.daily_w VALUES (current_date, 1)");
        var target = RefreshTarget.Window("win.daily_w", "day",
            "WITH gone AS (DELETE FROM win.facts_w RETURNING *) SELECT @from::date, count(*) FROM gone WHERE @to IS NOT NULL");

        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full });

        Assert.False(result.Success);
        Assert.Equal("0A000", result.Error!.SqlState);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM win.facts_w"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM win.daily_w"));
    }

    [Fact]
    public async Task A_timestamp_column_gets_the_local_midnights_as_timestamps()
    {
        var refresher = await FactsAsync("facts_l");
        await db.ExecuteAsync("CREATE TABLE win.hourly_l (hour timestamp, total bigint)");
        var today = Today;
        await AddFactAsync("facts_l", Local(today, 0, 30), 3);
        await AddFactAsync("facts_l", Local(today.AddDays(-1), 23, 30), 4);
        var target = RefreshTarget.Window("win.hourly_l", "hour", $"""
            SELECT date_trunc('hour', at AT TIME ZONE '{Chicago}'), sum(amount) FROM win.facts_l
            WHERE at AT TIME ZONE '{Chicago}' >= @from AND at AT TIME ZONE '{Chicago}' < @to GROUP BY 1
            """);

        var result = await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Incremental, Days = 1, TimeZone = Chicago });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(1L, result.RowsInserted);
        Assert.Equal(today.ToDateTime(TimeOnly.MinValue), await db.ScalarAsync<DateTime>("SELECT hour FROM win.hourly_l"));
    }

    [Theory]
    [InlineData("1 hour 59 minutes", WindowStrategy.Incremental, "smart chose incremental: last full refresh 1 h 59 min ago ≤ 2 h")]
    [InlineData("2 hours 1 minute", WindowStrategy.Full, "smart chose full: last full refresh 2 h 1 min ago > 2 h")]
    public async Task Smart_counts_only_successful_full_refreshes_of_the_target_against_FullRefreshAfter(string age, WindowStrategy expected, string reason)
    {
        var table = expected == WindowStrategy.Full ? "daily_b1" : "daily_b2";
        var refresher = await FactsAsync("facts_" + table);
        await db.ExecuteAsync($"CREATE TABLE win.{table} (day date, total bigint)");
        await db.CreateServices().GetRequiredService<IRefreshLog>().EnsureSchemaAsync();

        // The full refresh that counts, and newer runs that must not: a failed full, an incremental, another target's full.
        await db.ExecuteAsync($"""
            INSERT INTO matview_refresh.refresh_history (target, scope, started_at, duration_ms, success, mode, attempts, trigger) VALUES
                ('win.{table}', '', clock_timestamp() - interval '{age}', 1, true, 'full', 1, 'test'),
                ('win.{table}', '', clock_timestamp() - interval '1 minute', 1, false, 'full', 1, 'test'),
                ('win.{table}', '', clock_timestamp() - interval '1 minute', 1, true, 'incremental', 1, 'test'),
                ('win.other', '', clock_timestamp() - interval '1 minute', 1, true, 'full', 1, 'test')
            """);
        var target = RefreshTarget.Window($"win.{table}", "day", $"SELECT @from::date, count(*) FROM win.facts_{table} WHERE @to IS NOT NULL");

        var result = await refresher.RefreshAsync(target, new RefreshOptions { FullRefreshAfter = TimeSpan.FromHours(2) });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(expected, result.StrategyUsed);
        Assert.Equal(reason + "; the table is empty", result.ModeReason);
    }
}
