using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>
/// WebApplicationFactory stops a sample's host while the sample's own <c>app.Run()</c> stops and disposes it: the library's
/// hosted services must stop cleanly even after the container is gone.
/// </summary>
public sealed class HostLifecycleTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task The_hosted_services_stop_after_the_container_is_disposed()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, TestApp.HierarchySchedule);
        var app = builder.Build();
        await app.StartAsync().WaitAsync(TestApp.Patience);
        var hosted = app.Services.GetServices<IHostedService>().Where(s => s.GetType().Assembly == typeof(IRefreshScheduler).Assembly).ToList();
        Assert.NotEmpty(hosted); // the core's scheduler, debouncer, …: how many is the core's business
        await app.StopAsync().WaitAsync(TestApp.Patience);
        await app.DisposeAsync();

        foreach (var service in hosted)
        {
            await service.StopAsync(CancellationToken.None).WaitAsync(TestApp.Patience);
        }
    }
}
