namespace MatViewRefresh.Tests;

public sealed class WindowTargetTests
{
    private const string Query = "SELECT day, sum(amount) FROM facts WHERE day >= @from AND day < @to GROUP BY day";

    [Fact]
    public void A_window_target_names_its_table_and_keeps_column_and_query()
    {
        var target = RefreshTarget.Window("Marts.Daily", "Day Local", Query);

        Assert.Equal(RefreshTargetKind.Window, target.Kind);
        Assert.Equal(new QualifiedName("marts", "daily"), target.Name);
        Assert.Equal("Day Local", target.DateColumn);
        Assert.Equal(Query, target.Query);
        Assert.Equal(string.Empty, target.Scope);
        Assert.Equal("marts.daily", target.ToString());
    }

    [Theory]
    [InlineData("SELECT 1 WHERE @from < @to; DROP TABLE x", "more than one statement")]
    [InlineData("DELETE FROM x WHERE d >= @from AND d < @to", "does not start with SELECT or WITH")]
    [InlineData("INSERT INTO x SELECT @from, @to", "does not start with SELECT or WITH")]
    [InlineData("SELECT d FROM x WHERE d >= @from", "does not use @to")]
    [InlineData("SELECT d FROM x WHERE d < @to", "does not use @from")]
    [InlineData("SELECT d FROM x", "does not use @from and @to")]
    [InlineData("SELECT d FROM x WHERE d >= @from AND d < @to AND u = @user", "'@user' is not a parameter")]
    [InlineData("   ", "it is empty")]
    [InlineData("SELECT '@from', '@to'", "does not use @from and @to")]
    [InlineData("SELECT 1 -- @from @to", "does not use @from and @to")]
    public void A_query_that_is_not_one_select_with_both_parameters_is_refused_with_the_query_in_the_message(string query, string why)
    {
        var e = Assert.Throws<ArgumentException>(() => RefreshTarget.Window("marts.daily", "day", query));

        Assert.Equal("query", e.ParamName);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{query}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SELECT d FROM x WHERE d >= @from AND d < @to;", "SELECT d FROM x WHERE d >= $1 AND d < $2")]
    [InlineData("WITH w AS (SELECT * FROM x WHERE d >= @FROM AND d < @to) SELECT * FROM w", "WITH w AS (SELECT * FROM x WHERE d >= $1 AND d < $2) SELECT * FROM w")]
    [InlineData("SELECT ';' AS a, \"@x;\", $$;@y$$, E'\\';@z' FROM x /* ; */ WHERE d >= @from AND d < @to -- ;", "SELECT ';' AS a, \"@x;\", $$;@y$$, E'\\';@z' FROM x /* ; */ WHERE d >= $1 AND d < $2 -- ;")]
    [InlineData("(SELECT d FROM x WHERE d >= @from AND d < @to)", "(SELECT d FROM x WHERE d >= $1 AND d < $2)")]
    public void Parameters_become_positional_and_literals_comments_and_quoted_names_are_left_alone(string query, string expected)
    {
        _ = RefreshTarget.Window("marts.daily", "day", query);

        Assert.Equal(expected, WindowQuery.Parse(query));
    }

    [Fact]
    public void Bad_table_or_column_names_are_refused_naming_them()
    {
        var table = Assert.Throws<ArgumentException>(() => RefreshTarget.Window("a.b.c.d", "day", Query));
        var column = Assert.Throws<ArgumentException>(() => RefreshTarget.Window("marts.daily", "", Query));

        Assert.Contains("a.b.c.d", table.Message, StringComparison.Ordinal);
        Assert.Equal("dateColumn", column.ParamName);
    }

    [Fact]
    public void A_window_refresh_is_one_statement_with_quoted_identifiers_and_every_value_a_parameter()
    {
        var target = RefreshTarget.Window("\"Marts\".\"Daily Sales\"", "Day\"Local", Query);
        var window = new LocalWindow(new DateOnly(2025, 11, 7), new DateOnly(2025, 11, 9), DateTimeOffset.Parse("2025-11-07T06:00:00Z"), DateTimeOffset.Parse("2025-11-09T06:00:00Z"));

        var command = RefreshSql.Window(target, WindowStrategy.Smart, window, TimeSpan.FromDays(1), 1, true, TimeSpan.Zero, TimeSpan.Zero, "t", "log");

        Assert.Equal(2, command.Statements.Count);
        var statement = command.Statements[1];
        Assert.StartsWith("SELECT strategy, mode_reason, data_as_of, refreshed_at, duration_ms, rows_deleted, rows_inserted FROM \"log\".refresh_window($1, ", statement.CommandText);
        Assert.Equal("\"Marts\".\"Daily Sales\"", statement.Parameters[0]);
        Assert.Equal("Day\"Local", statement.Parameters[1]);
        Assert.Equal("smart", statement.Parameters[2]);
        Assert.Equal(TimeSpan.FromDays(1), statement.Parameters[3]);
        Assert.Equal([window.FromDay, window.ToDay, window.From, window.To], statement.Parameters.Skip(4).Take(4));
        Assert.Equal("DELETE FROM \"Marts\".\"Daily Sales\" WHERE \"Day\"\"Local\" >= $1 AND \"Day\"\"Local\" < $2", statement.Parameters[8]);
        Assert.Equal("DELETE FROM \"Marts\".\"Daily Sales\"", statement.Parameters[9]);
        Assert.Equal("INSERT INTO \"Marts\".\"Daily Sales\" SELECT * FROM (SELECT day, sum(amount) FROM facts WHERE day >= $1 AND day < $2 GROUP BY day\n) q", statement.Parameters[10]);
        Assert.Equal("SELECT max(\"Day\"\"Local\")::timestamptz FROM \"Marts\".\"Daily Sales\"", statement.Parameters[11]);
        Assert.Equal([command.LockKey, true, "0", "0", "\"Marts\".\"Daily Sales\"", string.Empty, 1, "t"], statement.Parameters.Skip(12));
    }

    [Fact]
    public void The_window_is_the_last_days_between_local_midnights_of_the_zone()
    {
        // 03:00 UTC on Nov 9 is still Nov 8 in Chicago (UTC-6): the window is Nov 7 and 8, from Chicago midnights.
        var window = LocalWindow.LastDays(DateTimeOffset.Parse("2025-11-09T03:00:00Z"), 2, "America/Chicago");

        Assert.Equal(new DateOnly(2025, 11, 7), window.FromDay);
        Assert.Equal(new DateOnly(2025, 11, 9), window.ToDay);
        Assert.Equal(DateTimeOffset.Parse("2025-11-07T06:00:00Z"), window.From);
        Assert.Equal(DateTimeOffset.Parse("2025-11-09T06:00:00Z"), window.To);
    }

    [Fact]
    public void A_window_across_a_dst_change_keeps_local_midnights()
    {
        // Chicago leaves daylight time on Nov 2, 2025: Nov 1 starts at 05:00 UTC, Nov 3 at 06:00 UTC.
        var window = LocalWindow.LastDays(DateTimeOffset.Parse("2025-11-02T12:00:00Z"), 2, "America/Chicago");

        Assert.Equal(DateTimeOffset.Parse("2025-11-01T05:00:00Z"), window.From);
        Assert.Equal(DateTimeOffset.Parse("2025-11-03T06:00:00Z"), window.To);
    }

    [Fact]
    public async Task Bad_window_options_are_refused_before_anything_runs()
    {
        var (refresher, executor) = EngineHarness.Create(new FakeCatalog());
        var target = RefreshTarget.Window("marts.daily", "day", Query);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => refresher.RefreshAsync(target, new RefreshOptions { Days = 0 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => refresher.RefreshAsync(target, new RefreshOptions { Days = int.MaxValue }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => refresher.RefreshAsync(target, new RefreshOptions { FullRefreshAfter = TimeSpan.Zero }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => refresher.RefreshAsync(target, new RefreshOptions { Strategy = (WindowStrategy)9 }));
        var zone = await Assert.ThrowsAsync<ArgumentException>(() => refresher.RefreshAsync(target, new RefreshOptions { TimeZone = "Mars/Olympus" }));
        Assert.Contains("Mars/Olympus", zone.Message, StringComparison.Ordinal);
        Assert.Empty(executor.Commands);
    }

    [Fact]
    public async Task A_window_refresh_reports_strategy_reason_and_rows_from_the_server()
    {
        var (refresher, executor) = EngineHarness.Create(new FakeCatalog());
        executor.Handler = (_, _) => Task.FromResult(new RefreshExecution
        {
            Strategy = WindowStrategy.Incremental, ModeReason = "smart chose incremental: last full refresh 3 h ago ≤ 24 h; newest data 5 min old", RowsDeleted = 4, RowsInserted = 5,
        });

        var result = await refresher.RefreshAsync(RefreshTarget.Window("marts.daily", "day", Query), new RefreshOptions { Days = 3, TimeZone = "America/Chicago" });

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Null(result.ModeUsed);
        Assert.Equal(WindowStrategy.Incremental, result.StrategyUsed);
        Assert.Equal("smart chose incremental: last full refresh 3 h ago ≤ 24 h; newest data 5 min old", result.ModeReason);
        Assert.Equal((4L, 5L), (result.RowsDeleted!.Value, result.RowsInserted!.Value));
        Assert.Equal("incremental", RefreshTelemetry.ResultModeTag(result));
        var parameters = Assert.Single(executor.Refreshes).Statements[1].Parameters;
        var from = (DateOnly)parameters[4]!;
        Assert.Equal(3, ((DateOnly)parameters[5]!).DayNumber - from.DayNumber);
    }

    [Fact]
    public void A_local_day_whose_midnight_happens_twice_starts_at_the_first_one()
    {
        // Atlantic/Azores falls back from 01:00 (UTC+0) to 00:00 (UTC-1) on 25 October 2026: midnight happens twice.
        var zone = TimeZoneInfo.FindSystemTimeZoneById("Atlantic/Azores");

        Assert.Equal(new DateTimeOffset(2026, 10, 25, 0, 0, 0, TimeSpan.Zero), LocalWindow.Midnight(new DateOnly(2026, 10, 25), zone));
        Assert.Equal(new DateTimeOffset(2026, 10, 26, 1, 0, 0, TimeSpan.Zero), LocalWindow.Midnight(new DateOnly(2026, 10, 26), zone));
    }
}
