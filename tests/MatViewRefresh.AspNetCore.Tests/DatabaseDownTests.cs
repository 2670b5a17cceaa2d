using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>When the database cannot be reached the routes answer 503 with the reason, never a bare 500.</summary>
public sealed class DatabaseDownTests
{
    [Theory]
    [InlineData("POST", "/api/matviews/refresh?views=mv_entity_ancestors")]
    [InlineData("GET", "/api/matviews/freshness")]
    [InlineData("GET", "/api/matviews/refresh/status")]
    [InlineData("GET", "/api/matviews/refresh/automated/metrics")]
    public async Task The_routes_answer_503_naming_the_failure(string method, string url)
    {
        // A port nothing listens on: bound, read, released.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var logs = new RecordingLoggerProvider();
        var builder = TestApp.CreateBuilder($"Host=127.0.0.1;Port={port};Username=nobody;Database=none;Timeout=3", o =>
        {
            TestApp.HierarchySchedule(o);
            o.MaxRetryAttempts = 0;
        }, logs);
        await using var app = await TestApp.StartAsync(builder, a => a.MapMatViewRefreshEndpoints("/api/matviews", o => o.AllowAnonymous = true));
        using var client = app.GetTestClient();

        var (status, body) = await client.SendAsync(new HttpMethod(method), url);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("127.0.0.1", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        if (method == "GET")
        {
            Assert.Contains(logs.Entries, e => e.Id.Id == MatViewRefreshEventIds.EndpointDatabaseUnavailable && e.Level == LogLevel.Warning);
        }

        await app.StopAsync();
    }
}
