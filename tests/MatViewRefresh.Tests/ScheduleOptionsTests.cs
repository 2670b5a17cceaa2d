using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MatViewRefresh.Tests;

public sealed class ScheduleOptionsTests
{
    private static IReadOnlyList<string> Failures(params (string Name, RefreshScheduleOptions Options)[] schedules)
    {
        var options = new MatViewRefreshOptions();
        foreach (var (name, schedule) in schedules)
        {
            options.Schedules[name] = schedule;
        }

        var result = new MatViewRefreshOptionsValidator().Validate(null, options);
        return result.Failed ? [.. result.Failures!] : [];
    }

    [Theory]
    [InlineData("*/61 * * * *", "MatViewRefresh:Schedules:nightly:Cron is '*/61 * * * *'")]
    [InlineData("0 0 * *", "MatViewRefresh:Schedules:nightly:Cron is '0 0 * *'")]
    public void An_invalid_cron_names_the_schedule_and_the_field(string cron, string expected)
    {
        var failure = Assert.Single(Failures(("nightly", new RefreshScheduleOptions { Cron = cron, Views = ["a"] })));
        Assert.StartsWith(expected, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_bad_setting_is_reported_with_its_path()
    {
        var failures = Failures(
            ("zone", new RefreshScheduleOptions { Cron = "0 3 * * *", TimeZone = "Mars/Olympus", Views = ["a"] }),
            ("both", new RefreshScheduleOptions { Cron = "0 3 * * *", Interval = TimeSpan.FromMinutes(1), Views = ["a"] }),
            ("neither", new RefreshScheduleOptions { Views = ["a"] }),
            ("mode", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Mode = "incremental", Views = ["a"] }),
            ("hours", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), ActiveHours = "6-22", Views = ["a"] }),
            ("jitter", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Jitter = TimeSpan.FromMinutes(2), Views = ["a"] }),
            ("catchup", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), MaxCatchUpRuns = 2, Views = ["a"] }),
            ("nothing", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1) }),
            ("data", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Views = ["a"], DataTimestampColumn = "daily.day" }));

        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:zone:TimeZone is 'Mars/Olympus'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:both: set exactly one of Interval and Cron", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:neither: set exactly one of Interval and Cron", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:mode:Mode is 'incremental': use Auto, Full or Concurrent", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:hours:ActiveHours is '6-22'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:jitter:Jitter is 00:02:00", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:catchup:MaxCatchUpRuns is 2", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:nothing: select something", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:data:DataTimestampColumn is 'daily.day': write schema.view.column", StringComparison.Ordinal));
        Assert.Equal(9, failures.Count);
    }

    [Fact]
    public void Window_settings_are_validated_with_the_schedule_and_field()
    {
        var window = new RefreshScheduleWindow { Table = "marts.daily", DateColumn = "day", Query = "SELECT day FROM t WHERE day >= @from AND day < @to" };
        var failures = Failures(
            ("strategy", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window], Strategy = "Concurrent" }),
            ("days", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window], Days = 0 }),
            ("after", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window], FullRefreshAfter = TimeSpan.Zero }),
            ("query", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window, new RefreshScheduleWindow { Table = "marts.x", DateColumn = "day", Query = "DELETE FROM t" }] }),
            ("twice", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window, window] }),
            ("ok", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Windows = [window], Strategy = "incremental" }));

        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:strategy:Strategy is 'Concurrent': use Smart, Incremental or Full", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:days:Days is 0", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:after:FullRefreshAfter is 00:00:00", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:query:Windows:1: ", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:twice:Windows:1: table marts.daily is given twice", StringComparison.Ordinal));
        Assert.Equal(5, failures.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2 * 24 * 3600)]
    public void A_run_lease_out_of_range_names_the_schedule_and_the_field(int seconds)
    {
        var failure = Assert.Single(Failures(("leased", new RefreshScheduleOptions { Interval = TimeSpan.FromMinutes(1), Views = ["a"], RunLease = TimeSpan.FromSeconds(seconds) })));
        Assert.StartsWith("MatViewRefresh:Schedules:leased:RunLease is ", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Window_schedules_bind_from_configuration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:StartScheduler"] = "false",
            ["MatViewRefresh:Schedules:marts:Interval"] = "00:05:00",
            ["MatViewRefresh:Schedules:marts:TimeZone"] = "America/Chicago",
            ["MatViewRefresh:Schedules:marts:Strategy"] = "Incremental",
            ["MatViewRefresh:Schedules:marts:Days"] = "3",
            ["MatViewRefresh:Schedules:marts:FullRefreshAfter"] = "06:00:00",
            ["MatViewRefresh:Schedules:marts:Windows:0:Table"] = "marts.daily_sales",
            ["MatViewRefresh:Schedules:marts:Windows:0:DateColumn"] = "day",
            ["MatViewRefresh:Schedules:marts:Windows:0:Query"] = "SELECT day, count(*) FROM sales WHERE day >= @from AND day < @to GROUP BY day",
        }).Build();
        using var services = new ServiceCollection().AddMatViewRefresh(configuration.GetSection("MatViewRefresh")).BuildServiceProvider();

        var schedule = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value.Schedules["marts"];
        Assert.Equal("Incremental", schedule.Strategy);
        Assert.Equal(3, schedule.Days);
        Assert.Equal(TimeSpan.FromHours(6), schedule.FullRefreshAfter);
        var window = Assert.Single(schedule.Windows);
        Assert.Equal("marts.daily_sales", window.Table);
        Assert.Equal("day", window.DateColumn);
        Assert.Equal(["marts"], services.GetRequiredService<IRefreshScheduler>().GetStatus().Select(s => s.Name));
    }

    [Fact]
    public void Schedules_bind_from_configuration_and_fail_at_start_when_invalid()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:StartScheduler"] = "false",
            ["MatViewRefresh:Schedules:nightly:Cron"] = "*/2 6-22 * * *",
            ["MatViewRefresh:Schedules:nightly:TimeZone"] = "America/Chicago",
            ["MatViewRefresh:Schedules:nightly:Schemas:0"] = "sales",
            ["MatViewRefresh:Schedules:nightly:IncludeDependents"] = "true",
            ["MatViewRefresh:Schedules:nightly:Mode"] = "Full",
            ["MatViewRefresh:Schedules:often:Interval"] = "00:00:30",
            ["MatViewRefresh:Schedules:often:ActiveHours"] = "06:00-22:00",
            ["MatViewRefresh:Schedules:often:Views:0"] = "marts.daily",
        }).Build();
        using var services = new ServiceCollection().AddMatViewRefresh(configuration.GetSection("MatViewRefresh")).BuildServiceProvider();

        var options = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;
        Assert.False(options.StartScheduler);
        Assert.Equal("*/2 6-22 * * *", options.Schedules["nightly"].Cron);
        Assert.Equal(["sales"], options.Schedules["nightly"].Schemas);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Schedules["OFTEN"].Interval);
        var status = services.GetRequiredService<IRefreshScheduler>().GetStatus();
        Assert.Equal(["nightly", "often"], status.Select(s => s.Name));
        Assert.Equal("*/2 6-22 * * *", status[0].Cron);

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:ConnectionString"] = "Host=localhost",
            ["MatViewRefresh:Schedules:nightly:Cron"] = "*/61 * * * *",
            ["MatViewRefresh:Schedules:nightly:Views:0"] = "a",
        }).Build();
        using var badServices = new ServiceCollection().AddMatViewRefresh(bad.GetSection("MatViewRefresh")).BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => badServices.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value);
        Assert.Contains("MatViewRefresh:Schedules:nightly:Cron is '*/61 * * * *'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_schedule_that_would_never_fire_or_whose_jitter_swallows_ticks_is_refused()
    {
        var failures = Failures(
            ("february30", new RefreshScheduleOptions { Cron = "0 0 30 2 *", Views = ["a"] }),
            ("nighttime", new RefreshScheduleOptions { Cron = "0 3 * * *", ActiveHours = "06:00-22:00", Views = ["a"] }),
            ("jittery", new RefreshScheduleOptions { Cron = "* * * * *", Jitter = TimeSpan.FromMinutes(5), Views = ["a"] }),
            ("fine", new RefreshScheduleOptions { Cron = "*/10 * * * *", Jitter = TimeSpan.FromMinutes(5), ActiveHours = "06:00-22:00", Views = ["a"] }));

        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:february30: it never fires (Cron '0 0 30 2 *'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:nighttime: it never fires (Cron '0 3 * * *' within ActiveHours 06:00-22:00", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("MatViewRefresh:Schedules:jittery:Jitter is 00:05:00; it must be shorter than the shortest gap", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains(":fine", StringComparison.Ordinal));
    }
}
