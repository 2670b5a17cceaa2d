using System.Net;
using System.Text;
using IngestApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The IngestApi sample with MatViewRefresh:Durable:Enabled=true: a batch's refreshes are enqueued in its transaction and run by the worker.</summary>
public sealed class IngestApiDurableTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:Durable:Enabled"] = "true",
            ["MatViewRefresh:Durable:PollInterval"] = "00:00:00.050",
            ["MatViewRefresh:Debounce:DelayMin"] = "00:00:00.010",
            ["MatViewRefresh:Debounce:DelayMax"] = "00:00:00.010",
            ["MatViewRefresh:Debounce:MinInterval"] = "00:00:00",
        });
        IngestApp.ConfigureServices(builder, db.ConnectionString);
        _app = builder.Build();
        await IngestApp.EnsureSchemaAsync(db.DataSource).WaitAsync(Patience);
        IngestApp.MapEndpoints(_app);
        await _app.StartAsync().WaitAsync(Patience);
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.StopAsync().WaitAsync(Patience);
        await _app.DisposeAsync().AsTask().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_batch_enqueues_its_days_in_its_transaction_and_the_worker_refreshes_them()
    {
        var user = Guid.NewGuid();
        var body = """
            {"samples": [
              {"ts": "2025-11-08T15:00:00Z", "type": "hr", "value": 60},
              {"ts": "2025-11-08T16:00:00Z", "type": "hr", "value": 80},
              {"ts": "2025-11-09T15:00:00Z", "type": "hr", "value": 70}
            ]}
            """;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/samples/batch?tz=America/Chicago") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-User-Id", user.ToString());
        using var response = await _client.SendAsync(request).WaitAsync(Patience);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Contains("durable_requests", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_requests") == 0
                && await db.ScalarAsync<long>("SELECT count(*) FROM marts.daily_features WHERE user_id = $1", user) == 2,
            "both local days refreshed by the durable worker");
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT sample_count FROM marts.daily_features WHERE user_id = $1 AND day_local = '2025-11-08'", user));
        Assert.Equal(2L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM matview_refresh.refresh_history WHERE target = $1 AND trigger = 'queue' AND success AND lag_ms IS NOT NULL", IngestApp.RefreshFunction));
    }
}
