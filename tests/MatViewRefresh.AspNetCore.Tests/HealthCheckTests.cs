using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary><c>AddHealthChecks().AddMatViewRefresh(views, maxAge)</c> in its four states, on a real PostgreSQL.</summary>
public sealed class HealthCheckTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private static ServiceProvider Services(string connectionString, IEnumerable<string> views, TimeSpan maxAge)
    {
        var services = new ServiceCollection();
        services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        services.AddMatViewRefresh(o =>
        {
            o.StartScheduler = false;
            o.MaxRetryAttempts = 0;
        });
        services.AddHealthChecks().AddMatViewRefresh(views, maxAge);
        return services.BuildServiceProvider();
    }

    private static async Task<HealthReportEntry> CheckAsync(ServiceProvider services)
    {
        var report = await services.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(TestApp.Patience);
        return report.Entries["matviewrefresh"];
    }

    private async Task RefreshAsync(ServiceProvider services, params string[] views) =>
        await services.GetRequiredService<IMaterializedViewRefresher>().RefreshManyAsync(RefreshSelection.Views(views));

    [Fact]
    public async Task Healthy_when_every_view_is_fresh_and_the_description_names_them_with_their_ages()
    {
        await using var services = Services(db.ConnectionString, DatabaseFixture.HierarchyViews, TimeSpan.FromHours(1));
        await RefreshAsync(services, DatabaseFixture.HierarchyViews);

        var entry = await CheckAsync(services);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        foreach (var view in DatabaseFixture.HierarchyViews)
        {
            Assert.Contains($"{view}: data ", entry.Description, StringComparison.Ordinal);
            Assert.IsType<double>(entry.Data[view]);
        }

        Assert.Contains(" s old", entry.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Degraded_when_a_view_is_older_than_max_age_or_never_refreshed()
    {
        await using var services = Services(db.ConnectionString, ["mv_entity_hierarchy_stats"], TimeSpan.FromMilliseconds(1));
        await RefreshAsync(services, "mv_entity_hierarchy_stats");

        var stale = await CheckAsync(services);
        Assert.Equal(HealthStatus.Degraded, stale.Status);
        Assert.Contains("mv_entity_hierarchy_stats: stale, data ", stale.Description, StringComparison.Ordinal);
        Assert.Contains("(max 0 s old)", stale.Description, StringComparison.Ordinal);

        await db.ExecuteAsync("CREATE MATERIALIZED VIEW mv_never AS SELECT 1 AS x");
        await using var never = Services(db.ConnectionString, ["mv_never"], TimeSpan.FromHours(1));
        var neverEntry = await CheckAsync(never);
        Assert.Equal(HealthStatus.Degraded, neverEntry.Status);
        Assert.Equal("mv_never: never refreshed", neverEntry.Description);
    }

    [Fact]
    public async Task Unhealthy_when_a_views_last_refresh_failed()
    {
        await using var services = Services(db.ConnectionString, ["mv_entity_ancestors", "mv_broken"], TimeSpan.FromHours(1));
        await RefreshAsync(services, "mv_entity_ancestors", "mv_broken");

        var entry = await CheckAsync(services);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("mv_broken: last refresh failed at ", entry.Description, StringComparison.Ordinal);
        Assert.Contains("division by zero", entry.Description, StringComparison.Ordinal);
        Assert.Contains("mv_entity_ancestors: data ", entry.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unhealthy_without_throwing_when_the_database_cannot_be_reached()
    {
        // A port nothing listens on: bound, read, released.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var services = Services($"Host=127.0.0.1;Port={port};Username=nobody;Database=none;Timeout=3", ["mv_entity_ancestors"], TimeSpan.FromHours(1));

        var entry = await CheckAsync(services);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.StartsWith("The refresh log could not be read: ", entry.Description, StringComparison.Ordinal);
        Assert.NotNull(entry.Exception);
    }

    [Fact]
    public void Bad_arguments_are_rejected_at_registration_naming_the_value()
    {
        var builder = new ServiceCollection().AddHealthChecks();

        Assert.Contains("'a;b'", Assert.Throws<ArgumentException>(() => builder.AddMatViewRefresh(["a;b"], TimeSpan.FromMinutes(1))).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => builder.AddMatViewRefresh([], TimeSpan.FromMinutes(1)));
        Assert.Contains("-00:01:00", Assert.Throws<ArgumentException>(() => builder.AddMatViewRefresh(["v"], TimeSpan.FromMinutes(-1))).Message, StringComparison.Ordinal);
    }
}
