using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

public sealed class ChangedDaysRefreshTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private static DateOnly D(string day) => DateOnly.Parse(day, CultureInfo.InvariantCulture);

    /// <summary>The mart rows that differ from recomputing the whole query now (both directions); 0 when the mart is right.</summary>
    private Task<long> DifferencesAsync(string mart, string recompute) => db.ScalarAsync<long>($"""
        SELECT count(*) FROM ((SELECT * FROM {mart} EXCEPT ALL SELECT * FROM ({recompute}) r)
                              UNION ALL (SELECT * FROM ({recompute}) r EXCEPT ALL SELECT * FROM {mart})) d
        """);

    [Fact]
    public async Task Refreshing_given_days_replaces_exactly_those_days_and_the_mart_equals_the_recomputation()
    {
        await db.ExecuteAsync("""
            CREATE SCHEMA days;
            CREATE TABLE days.facts (id serial PRIMARY KEY, day date NOT NULL, amount int NOT NULL);
            CREATE TABLE days.daily (day date PRIMARY KEY, total bigint NOT NULL);
            INSERT INTO days.facts (day, amount) SELECT d::date, 1 FROM generate_series('2026-02-20'::date, '2026-03-20'::date, '1 day') d;
            """);
        var refresher = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();
        var target = RefreshTarget.Window("days.daily", "day", "SELECT day, sum(amount) FROM days.facts WHERE day >= @from AND day < @to GROUP BY day");
        Assert.True((await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full })).Success);

        // Late rows for 1–3 March and 7 March, and one for 15 March that the refresh is not asked for.
        await db.ExecuteAsync("INSERT INTO days.facts (day, amount) VALUES ('2026-03-01', 10), ('2026-03-02', 10), ('2026-03-03', 10), ('2026-03-07', 10), ('2026-03-15', 10)");
        var result = await refresher.RefreshAsync(
            target, new RefreshOptions { DayRanges = [new(D("2026-03-02"), D("2026-03-03")), DayRange.Single(D("2026-03-07")), DayRange.Single(D("2026-03-01"))], Trigger = "capture" });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(WindowStrategy.Incremental, result.StrategyUsed);
        Assert.Equal("given days requested: 4 days: 2026-03-01..03, 2026-03-07", result.ModeReason);
        Assert.Equal((4L, 4L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal(
            "2026-03-01=11,2026-03-02=11,2026-03-03=11,2026-03-07=11",
            await db.ScalarAsync<string>("SELECT string_agg(day || '=' || total, ',' ORDER BY day) FROM days.daily WHERE total > 1"));
        Assert.Equal(
            "incremental (4 days: 2026-03-01..03, 2026-03-07)|capture",
            await db.ScalarAsync<string>("SELECT mode || '|' || trigger FROM matview_refresh.refresh_history WHERE target = 'days.daily' ORDER BY id DESC LIMIT 1"));
        Assert.Equal("incremental (4 days: 2026-03-01..03, 2026-03-07)", await db.ScalarAsync<string>("SELECT mode FROM matview_refresh.refresh_log WHERE target = 'days.daily'"));

        // 15 March was not asked for: asking for it makes the mart equal to the recomputation.
        Assert.Equal(2L, await DifferencesAsync("days.daily", "SELECT day, sum(amount) FROM days.facts GROUP BY day"));
        Assert.True((await refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [DayRange.Single(D("2026-03-15"))] })).Success);
        Assert.Equal(0L, await DifferencesAsync("days.daily", "SELECT day, sum(amount) FROM days.facts GROUP BY day"));
    }

    [Fact]
    public async Task Given_days_of_a_timestamptz_mart_are_bounded_by_the_zones_local_midnights_across_a_dst_change()
    {
        // Chicago leaves daylight time on 2 November 2025 (a 25-hour day).
        await db.ExecuteAsync("""
            CREATE SCHEMA IF NOT EXISTS tz;
            CREATE TABLE tz.events (at timestamptz NOT NULL, amount int NOT NULL);
            CREATE TABLE tz.hourly (hour timestamptz PRIMARY KEY, total bigint NOT NULL);
            INSERT INTO tz.events SELECT h, 1 FROM generate_series('2025-10-31 00:00Z'::timestamptz, '2025-11-05 00:00Z', '1 hour') h;
            """);
        var refresher = db.CreateServices().GetRequiredService<IMaterializedViewRefresher>();
        var target = RefreshTarget.Window("tz.hourly", "hour", "SELECT date_trunc('hour', at), sum(amount) FROM tz.events WHERE at >= @from AND at < @to GROUP BY 1");
        Assert.True((await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full })).Success);
        await db.ExecuteAsync("UPDATE tz.events SET amount = 5");

        var result = await refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [DayRange.Single(D("2025-11-02"))], TimeZone = "America/Chicago" });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal((25L, 25L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal(
            "2025-11-02T05:00|2025-11-03T05:00",
            await db.ScalarAsync<string>("SELECT to_char(min(hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') || '|' || to_char(max(hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') FROM tz.hourly WHERE total = 5"));
    }

    /// <summary>
    /// The property: after any random mix of backdated inserts, updates that move rows between days, and deletes, written
    /// by a plain connection to a watched table, the capture triggers request exactly the local days touched (old and new
    /// values, computed here independently with .NET's time zones), refreshing those days recomputes exactly those days (the
    /// mart rows a refresh writes get a fresh generation number), and the mart then equals the recomputation over all time.
    /// </summary>
    [Theory]
    [InlineData("UTC", 11)]
    [InlineData("America/Chicago", 12)]
    [InlineData("Europe/Berlin", 13)]
    [InlineData("Australia/Lord_Howe", 14)]
    [InlineData("Atlantic/Azores", 15)]
    [InlineData("America/Sao_Paulo", 16)]
    public async Task Property_the_days_recomputed_are_exactly_the_days_touched_and_the_mart_equals_the_recomputation(string timeZone, int seed)
    {
        const int Iterations = 60;
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        var schema = "prop_" + seed.ToString(CultureInfo.InvariantCulture);
        var localDay = $"(at AT TIME ZONE '{timeZone}')::date";
        await db.ExecuteAsync($"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.facts (id integer PRIMARY KEY, at timestamptz NOT NULL, amount int NOT NULL);
            CREATE TABLE {schema}.daily (at date PRIMARY KEY, total bigint NOT NULL, n bigint NOT NULL, generation bigint NOT NULL);
            CREATE SEQUENCE {schema}.generation;
            """);
        var recompute = $"SELECT {localDay} AS day, sum(amount) AS total, count(*) AS n FROM {schema}.facts GROUP BY 1";
        // The mart's date column has the facts' column's name: the capture triggers record the local days of its values.
        var target = RefreshTarget.Window($"{schema}.daily", "at", $"""
            SELECT day, total, n, nextval('{schema}.generation') FROM (
                SELECT {localDay} AS day, sum(amount) AS total, count(*) AS n FROM {schema}.facts
                WHERE {localDay} >= @from AND {localDay} < @to GROUP BY 1) g
            """);
        using var services = db.CreateServices();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        var watch = await services.GetRequiredService<IRefreshWatcher>().WatchAsync(target, timeZone);
        Assert.Equal("at", Assert.Single(watch.Tables).DayColumn);

        // Instants from September 2018 to December 2019 (DST changes of both hemispheres; Sao Paulo's at midnight until 2019),
        // half of them within 90 minutes of a local midnight, whole seconds (PostgreSQL keeps microseconds).
        var random = new Random(seed);
        var start = new DateTimeOffset(2018, 9, 1, 0, 0, 0, TimeSpan.Zero);
        DateTimeOffset RandomInstant()
        {
            if (random.Next(2) == 0)
            {
                return start.AddSeconds(random.NextInt64(0, 480L * 86_400));
            }

            var day = DateOnly.FromDateTime(start.UtcDateTime).AddDays(random.Next(480));
            return LocalWindow.Midnight(day, zone).AddSeconds(random.Next(-5_400, 5_400));
        }

        DateOnly DayOf(DateTimeOffset at) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(at, zone).DateTime);

        var rows = new Dictionary<int, DateTimeOffset>();
        var nextId = 1;
        await using var writer = await db.DataSource.OpenConnectionAsync();
        async Task WriteAsync(string sql, params object[] values)
        {
            await using var command = new NpgsqlCommand(sql, writer);
            foreach (var value in values)
            {
                command.Parameters.Add(new() { Value = value });
            }

            await command.ExecuteNonQueryAsync();
        }

        // The initial rows, then a full refresh.
        var initial = Enumerable.Range(0, 400).Select(_ => (Id: nextId++, At: RandomInstant())).ToList();
        await WriteAsync($"INSERT INTO {schema}.facts SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int[])",
            initial.Select(r => r.Id).ToArray(), initial.Select(r => r.At).ToArray(), initial.Select(r => r.Id % 7 + 1).ToArray());
        initial.ForEach(r => rows[r.Id] = r.At);
        Assert.True((await refresher.RefreshAsync(target, new RefreshOptions { Strategy = WindowStrategy.Full, TimeZone = timeZone })).Success);
        var targetName = target.ToString();

        for (var iteration = 0; iteration < Iterations; iteration++)
        {
            await db.ExecuteAsync("DELETE FROM matview_refresh.refresh_requests WHERE target = $1", targetName);
            var touched = new HashSet<DateOnly>();
            await using (var transaction = await writer.BeginTransactionAsync())
            {
                for (var statement = random.Next(1, 4); statement > 0; statement--)
                {
                    switch (random.Next(3))
                    {
                        case 0:
                            var added = Enumerable.Range(0, random.Next(1, 40)).Select(_ => (Id: nextId++, At: RandomInstant())).ToList();
                            await WriteAsync($"INSERT INTO {schema}.facts SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int[])",
                                added.Select(r => r.Id).ToArray(), added.Select(r => r.At).ToArray(), added.Select(_ => random.Next(1, 100)).ToArray());
                            added.ForEach(r => { rows[r.Id] = r.At; touched.Add(DayOf(r.At)); });
                            break;
                        case 1:
                            var moved = rows.Keys.OrderBy(_ => random.Next()).Take(random.Next(0, 6)).Select(id => (Id: id, At: RandomInstant())).ToList();
                            await WriteAsync($"UPDATE {schema}.facts f SET at = m.at FROM unnest($1::int[], $2::timestamptz[]) m(id, at) WHERE f.id = m.id",
                                moved.Select(r => r.Id).ToArray(), moved.Select(r => r.At).ToArray());
                            moved.ForEach(r => { touched.Add(DayOf(rows[r.Id])); touched.Add(DayOf(r.At)); rows[r.Id] = r.At; });
                            break;
                        default:
                            var gone = rows.Keys.OrderBy(_ => random.Next()).Take(random.Next(0, 6)).ToArray();
                            await WriteAsync($"DELETE FROM {schema}.facts WHERE id = ANY ($1)", gone);
                            foreach (var id in gone)
                            {
                                touched.Add(DayOf(rows[id]));
                                rows.Remove(id);
                            }

                            break;
                    }
                }

                await transaction.CommitAsync();
            }

            // The requests name exactly the touched days (each statement's runs are contiguous and disjoint).
            var requested = await RequestsAsync(targetName);
            Assert.All(requested, r => Assert.False(r.FullRefresh));
            var requestedDays = requested.SelectMany(r => Days(r.FirstDay!.Value, r.LastDay!.Value)).ToHashSet();
            Assert.True(touched.SetEquals(requestedDays), $"{timeZone} iteration {iteration}: touched {Show(touched)}, requested {Show(requestedDays)}");
            if (touched.Count == 0)
            {
                continue;
            }

            var runs = ChangeCaptureRequests.From(requested);
            var options = runs.Apply(new RefreshOptions { TimeZone = timeZone, Trigger = "capture" }, DateTimeOffset.UtcNow);
            var generation = await db.ScalarAsync<long>($"SELECT nextval('{schema}.generation')");
            var result = await refresher.RefreshAsync(target, options);
            Assert.True(result.Success, result.Error?.ToString());

            // Recomputed: the days written by this refresh. A touched day left without rows has no mart row at all.
            var recomputed = (await DaysAsync($"SELECT at FROM {schema}.daily WHERE generation > {generation}")).ToHashSet();
            var touchedWithRows = touched.Where(d => rows.Values.Any(at => DayOf(at) == d)).ToHashSet();
            Assert.True(touchedWithRows.SetEquals(recomputed), $"{timeZone} iteration {iteration}: touched {Show(touchedWithRows)}, recomputed {Show(recomputed)}");
            Assert.Equal(0L, await DifferencesAsync($"(SELECT at, total, n FROM {schema}.daily) m", recompute));
        }
    }

    private async Task<List<RefreshRequestRow>> RequestsAsync(string target)
    {
        var list = new List<RefreshRequestRow>();
        await using var command = db.DataSource.CreateCommand("SELECT first_day, last_day, full_refresh FROM matview_refresh.refresh_requests WHERE target = $1 AND source = 'trigger' ORDER BY requested_at, first_day");
        command.Parameters.Add(new() { Value = target });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            list.Add(new(
                reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateOnly>(1), reader.GetBoolean(2)));
        }

        return list;
    }

    private async Task<List<DateOnly>> DaysAsync(string sql)
    {
        var list = new List<DateOnly>();
        await using var command = db.DataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            list.Add(reader.GetFieldValue<DateOnly>(0));
        }

        return list;
    }

    private static IEnumerable<DateOnly> Days(DateOnly first, DateOnly last)
    {
        for (var day = first; day <= last; day = day.AddDays(1))
        {
            yield return day;
        }
    }

    private static string Show(IEnumerable<DateOnly> days) => string.Join(",", days.Order().Select(d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
}
