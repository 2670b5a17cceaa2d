namespace MatViewRefresh.Tests;

public sealed class ChangedDaysTests
{
    private const string Query = "SELECT day, sum(amount) FROM facts WHERE day >= @from AND day < @to GROUP BY day";

    private static DateOnly D(string day) => DateOnly.Parse(day, System.Globalization.CultureInfo.InvariantCulture);

    private static DayRange R(string first, string last) => new(D(first), D(last));

    [Fact]
    public void A_day_range_is_inclusive_at_both_ends_and_one_ending_before_it_starts_is_refused_naming_both_days()
    {
        Assert.Equal(3, R("2026-03-01", "2026-03-03").DayCount);
        Assert.Equal(1, DayRange.Single(D("2026-03-01")).DayCount);
        Assert.Equal("2026-03-01..2026-03-03", R("2026-03-01", "2026-03-03").ToString());
        Assert.Equal("2026-03-01", DayRange.Single(D("2026-03-01")).ToString());

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => R("2026-03-05", "2026-03-04"));
        Assert.Equal("last", e.ParamName);
        Assert.Contains("2026-03-05..2026-03-04", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ranges_are_sorted_and_overlapping_or_adjacent_ones_merged()
    {
        var merged = DayRanges.Merge([R("2026-03-07", "2026-03-07"), R("2026-03-02", "2026-03-03"), R("2026-03-01", "2026-03-02"), R("2026-03-04", "2026-03-04"), R("2026-03-09", "2026-03-10"), R("2026-03-10", "2026-03-10")]);

        Assert.Equal([R("2026-03-01", "2026-03-04"), R("2026-03-07", "2026-03-07"), R("2026-03-09", "2026-03-10")], merged);
        Assert.Empty(DayRanges.Merge([]));
    }

    [Fact]
    public void The_logged_mode_counts_the_days_and_lists_the_runs_compactly_then_how_many_more()
    {
        Assert.Equal(
            "incremental (8 days: 2026-03-01..03, 2026-03-07, 2026-04-30..05-01, 2026-12-31..2027-01-01)",
            DayRanges.Mode([R("2026-03-01", "2026-03-03"), R("2026-03-07", "2026-03-07"), R("2026-04-30", "2026-05-01"), R("2026-12-31", "2027-01-01")]));
        Assert.Equal("incremental (1 day: 2026-03-07)", DayRanges.Mode([R("2026-03-07", "2026-03-07")]));
        var many = Enumerable.Range(0, 8).Select(i => DayRange.Single(D("2026-01-01").AddDays(2 * i))).ToList();
        Assert.Equal(
            "incremental (8 days: 2026-01-01, 2026-01-03, 2026-01-05, 2026-01-07, 2026-01-09, … and 3 more runs)",
            DayRanges.Mode(many));
    }

    [Fact]
    public async Task Day_ranges_are_sent_merged_as_first_days_and_exclusive_end_days_with_the_zones_midnights()
    {
        var (refresher, executor) = EngineHarness.Create(new FakeCatalog());
        executor.Handler = (_, _) => Task.FromResult(new RefreshExecution { Strategy = WindowStrategy.Incremental, RowsDeleted = 1, RowsInserted = 2 });

        var result = await refresher.RefreshAsync(
            RefreshTarget.Window("marts.daily", "day", Query),
            new RefreshOptions { DayRanges = [R("2025-11-02", "2025-11-02"), R("2025-10-30", "2025-11-01"), R("2025-11-20", "2025-11-20")], TimeZone = "America/Chicago" });

        Assert.True(result.Success, result.Error?.ToString());
        var statement = Assert.Single(executor.Refreshes).Statements[1];
        Assert.Contains(".refresh_window_days(", statement.CommandText, StringComparison.Ordinal);
        var p = statement.Parameters;
        Assert.Equal([D("2025-10-30"), D("2025-11-20")], (DateOnly[])p[2]!);
        Assert.Equal([D("2025-11-03"), D("2025-11-21")], (DateOnly[])p[3]!);

        // Chicago leaves daylight time on 2 November 2025: 30 October starts at 05:00 UTC, 3 November at 06:00 UTC.
        Assert.Equal(DateTimeOffset.Parse("2025-10-30T05:00:00Z", System.Globalization.CultureInfo.InvariantCulture), ((DateTimeOffset[])p[4]!)[0]);
        Assert.Equal(DateTimeOffset.Parse("2025-11-03T06:00:00Z", System.Globalization.CultureInfo.InvariantCulture), ((DateTimeOffset[])p[5]!)[0]);
        Assert.Equal("incremental (5 days: 2025-10-30..11-02, 2025-11-20)", p[8]);
    }

    [Fact]
    public async Task Bad_day_range_options_are_refused_naming_the_setting_before_anything_runs()
    {
        var (refresher, executor) = EngineHarness.Create(new FakeCatalog());
        var target = RefreshTarget.Window("marts.daily", "day", Query);
        var day = R("2026-03-01", "2026-03-01");

        var empty = await Assert.ThrowsAsync<ArgumentException>(() => refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [] }));
        var both = await Assert.ThrowsAsync<ArgumentException>(() => refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [day], Days = 3 }));
        var full = await Assert.ThrowsAsync<ArgumentException>(() => refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [day], Strategy = WindowStrategy.Full }));
        var end = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => refresher.RefreshAsync(target, new RefreshOptions { DayRanges = [new DayRange(D("9999-12-30"), DateOnly.MaxValue)] }));

        Assert.Contains("DayRanges is empty", empty.Message, StringComparison.Ordinal);
        Assert.Contains("Days is 3 and DayRanges is set", both.Message, StringComparison.Ordinal);
        Assert.Contains("Strategy is Full and DayRanges is set", full.Message, StringComparison.Ordinal);
        Assert.Contains("9999-12-30..9999-12-31", end.Message, StringComparison.Ordinal);
        Assert.Empty(executor.Commands);
    }

    [Fact]
    public void Request_rows_coalesce_to_full_when_any_is_full()
    {
        var requests = ChangeCaptureRequests.From([new(D("2026-03-01"), D("2026-03-02"), false), new(null, null, true)]);

        Assert.Equal(new ChangeCaptureRequests(true, false, []), requests);
        var options = requests.Apply(new RefreshOptions { Days = 2, TimeZone = "UTC" }, DateTimeOffset.UtcNow);
        Assert.Equal(WindowStrategy.Full, options.Strategy);
        Assert.Null(options.DayRanges);
    }

    [Fact]
    public void Request_rows_with_days_become_exactly_those_days_merged_incrementally()
    {
        var requests = ChangeCaptureRequests.From(
        [
            new(D("2026-03-01"), D("2026-03-03"), false), new(D("2026-03-07"), D("2026-03-07"), false), new(D("2026-03-02"), D("2026-03-04"), false),
        ]);

        Assert.False(requests.Full);
        Assert.False(requests.AsConfigured);
        Assert.Equal([R("2026-03-01", "2026-03-04"), R("2026-03-07", "2026-03-07")], requests.Days);
        var options = requests.Apply(new RefreshOptions { TimeZone = "Europe/Paris", Trigger = "capture" }, DateTimeOffset.UtcNow);
        Assert.Equal(WindowStrategy.Incremental, options.Strategy);
        Assert.Equal(requests.Days, options.DayRanges);
        Assert.Equal(("Europe/Paris", "capture"), (options.TimeZone, options.Trigger));
    }

    [Fact]
    public void Request_rows_without_days_keep_the_usual_refresh_and_with_days_add_the_usual_window_to_them()
    {
        var usual = new RefreshOptions { Days = 2, TimeZone = "UTC" };
        var onlyUsual = ChangeCaptureRequests.From([new(null, null, false)]);
        var both = ChangeCaptureRequests.From([new(null, null, false), new(D("2026-01-10"), D("2026-01-10"), false)]);

        Assert.Same(usual, onlyUsual.Apply(usual, DateTimeOffset.Parse("2026-03-05T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture)));
        var options = both.Apply(usual, DateTimeOffset.Parse("2026-03-05T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal([R("2026-01-10", "2026-01-10"), R("2026-03-04", "2026-03-05")], options.DayRanges);
        Assert.Null(options.Days);
        Assert.Equal(WindowStrategy.Incremental, options.Strategy);
        var configuredFull = usual with { Strategy = WindowStrategy.Full };
        Assert.Same(configuredFull, both.Apply(configuredFull, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void A_request_row_with_one_day_or_reversed_days_is_refused_naming_it()
    {
        var e = Assert.Throws<ArgumentException>(() => ChangeCaptureRequests.From([new(D("2026-03-02"), null, false)]));
        var reversed = Assert.Throws<ArgumentException>(() => ChangeCaptureRequests.From([new(D("2026-03-02"), D("2026-03-01"), false)]));

        Assert.Contains("2026-03-02", e.Message, StringComparison.Ordinal);
        Assert.Contains("2026-03-01", reversed.Message, StringComparison.Ordinal);
    }
}

public sealed class WatchOptionsTests
{
    [Fact]
    public void Bad_watch_settings_fail_validation_naming_the_setting_and_the_value()
    {
        var options = new MatViewRefreshOptions();
        options.Watch.Views.Add("a.b.c.d");
        options.Watch.Windows.Add(new RefreshScheduleWindow { Table = "marts.daily", DateColumn = "day", Query = "SELECT 1" });
        options.Watch.TimeZone = "Mars/Olympus";

        var result = new MatViewRefreshOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToList();
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Watch:Views:0: ", StringComparison.Ordinal) && f.Contains("a.b.c.d", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Watch:Windows:0: ", StringComparison.Ordinal) && f.Contains("SELECT 1", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Watch:TimeZone: ", StringComparison.Ordinal) && f.Contains("Mars/Olympus", StringComparison.Ordinal));
    }

    [Fact]
    public void Configured_watches_become_view_and_window_targets()
    {
        var watch = new RefreshWatchOptions { Views = ["sales.mv_daily"] };
        watch.Windows.Add(new RefreshScheduleWindow { Table = "marts.daily", DateColumn = "day", Query = "SELECT day FROM f WHERE day >= @from AND day < @to" });

        var targets = WatchHostedService.Targets(watch).ToList();

        Assert.Equal([RefreshTargetKind.MaterializedView, RefreshTargetKind.Window], targets.Select(t => t.Kind));
        Assert.Equal(["sales.mv_daily", "marts.daily"], targets.Select(t => t.ToString()));
        Assert.True(new MatViewRefreshOptionsValidator().Validate(null, new MatViewRefreshOptions { Watch = watch }).Succeeded);
    }
}
