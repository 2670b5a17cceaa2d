using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.Tests;

public sealed class DatabaseSchedulerValidationTests
{
    [Theory]
    [InlineData("nightly")]
    [InlineData("sales.daily-5m_v2")]
    [InlineData("7am")]
    [InlineData("a2345678901234567890123456789012345678901234567")]
    public void Sane_names_are_prefixed(string name) =>
        Assert.Equal("matview_refresh:" + name, DatabaseRefreshScheduler.JobName(name));

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("-leading")]
    [InlineData("with space")]
    [InlineData("quote'd")]
    [InlineData("semi;colon")]
    [InlineData("ünïcode")]
    [InlineData("a23456789012345678901234567890123456789012345678")]
    public void Other_names_are_refused_naming_them(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => DatabaseRefreshScheduler.JobName(name));
        Assert.Equal("name", e.ParamName);
        Assert.Contains($"'{name}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UTC", "GMT")]
    [InlineData("Etc/UTC", "GMT")]
    [InlineData("GMT", "UTC")]
    [InlineData("America/Chicago", "America/Chicago")]
    [InlineData("US/Central", "America/Chicago")]
    public void A_zone_with_the_servers_rules_is_accepted(string zone, string server) =>
        DatabaseRefreshScheduler.CheckZone(zone, server);

    [Theory]
    [InlineData("America/Chicago", "GMT")]
    [InlineData("Europe/London", "GMT")]
    [InlineData("UTC", "Europe/Berlin")]
    [InlineData("Etc/GMT+1", "GMT")]
    public void A_zone_with_other_rules_is_refused_saying_why(string zone, string server)
    {
        var e = Assert.Throws<ArgumentException>(() => DatabaseRefreshScheduler.CheckZone(zone, server));
        Assert.Equal("timeZone", e.ParamName);
        Assert.Contains($"'{zone}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(server, e.Message, StringComparison.Ordinal);
        Assert.Contains("daylight saving", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_zone_is_refused() =>
        Assert.Equal("timeZone", Assert.Throws<ArgumentException>(() => DatabaseRefreshScheduler.CheckZone("Mars/Olympus_Mons", "GMT")).ParamName);

    [Fact]
    public void AddMatViewRefresh_registers_the_database_scheduler_once_and_keeps_one_registered_before()
    {
        var services = new ServiceCollection().AddMatViewRefresh().AddMatViewRefresh();
        var descriptor = Assert.Single(services, d => d.ServiceType == typeof(IDatabaseRefreshScheduler));
        Assert.Equal(typeof(DatabaseRefreshScheduler), descriptor.ImplementationType);

        var mine = new ServiceCollection();
        mine.AddSingleton<IDatabaseRefreshScheduler>(_ => null!);
        mine.AddMatViewRefresh();
        Assert.Null(Assert.Single(mine, d => d.ServiceType == typeof(IDatabaseRefreshScheduler)).ImplementationType);
    }
}
