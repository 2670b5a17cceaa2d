using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using IngestApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The IngestApi sample over HTTP (in-memory test server) on a real PostgreSQL.</summary>
public sealed class IngestApiTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TicketRecorder _tickets = new();
    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // The same keys as the environment variables MatViewRefresh__Debounce__MinInterval=… would set.
            ["MatViewRefresh:Debounce:DelayMin"] = "00:00:00.010",
            ["MatViewRefresh:Debounce:DelayMax"] = "00:00:00.020",
            ["MatViewRefresh:Debounce:MinInterval"] = "00:00:00.050",
        });
        builder.Services.AddSingleton<IBatchTicketObserver>(_tickets);
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

    private Task<HttpResponseMessage> PostAsync(string? user, string body, string query = "?tz=America/Chicago")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/samples/batch" + query) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (user is not null)
        {
            request.Headers.Add("X-User-Id", user);
        }

        return _client.SendAsync(request).WaitAsync(Patience);
    }

    private Task<HttpResponseMessage> GetFeaturesAsync(string? user, string query)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/features/today" + query);
        if (user is not null)
        {
            request.Headers.Add("X-User-Id", user);
        }

        return _client.SendAsync(request).WaitAsync(Patience);
    }

    private Task<long> SampleCountAsync(Guid user) => db.ScalarAsync<long>("SELECT count(*) FROM ingest.samples WHERE user_id = $1", user).WaitAsync(Patience);

    [Fact]
    public async Task A_batch_is_accepted_and_the_users_day_is_refreshed_a_moment_later()
    {
        var user = Guid.NewGuid();
        var response = await PostAsync(user.ToString(), """{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"hr","value":72.5},{"ts":"2025-11-08T11:00:00Z","type":"hr","value":80}]}""");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience);
        Assert.Equal(2, body.GetProperty("inserted").GetInt32());
        var ticket = Assert.Single(body.GetProperty("tickets").EnumerateArray());
        Assert.Equal($"marts.refresh_daily_features_user(day_local=2025-11-08&user_id={user})", ticket.GetProperty("key").GetString());
        Assert.False(ticket.GetProperty("coalesced").GetBoolean());

        // Await the endpoint's own ticket: the run it requested after its commit, not one a new request would schedule.
        var requested = Assert.Single(_tickets.Of(user));
        Assert.Equal(ticket.GetProperty("key").GetString(), requested.Key);
        var run = await requested.Completion.WaitAsync(Patience);
        Assert.True(run.Success, run.Error?.ToString());

        var features = await GetFeaturesAsync(user.ToString(), "?tz=America/Chicago&day=2025-11-08");
        var json = await features.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience);
        Assert.Equal(HttpStatusCode.OK, features.StatusCode);
        Assert.Equal(2, json.GetProperty("sample_count").GetInt64());
        Assert.Equal(152.5, json.GetProperty("value_sum").GetDouble());
        Assert.Equal(76.25, json.GetProperty("value_avg").GetDouble());
        Assert.Equal("2025-11-08", json.GetProperty("day_local").GetString());
        Assert.True(json.GetProperty("age_ms").GetDouble() >= 0);
        Assert.NotEqual(JsonValueKind.Null, json.GetProperty("refreshed_at").ValueKind);
        Assert.Contains("mart row loaded", json.GetProperty("trace").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("refreshed features snapshot after upload", json.GetProperty("trace").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task A_batch_spanning_two_local_days_requests_both()
    {
        var user = Guid.NewGuid();

        // 04:30Z on the 9th is still the 8th in Chicago; 12:00Z is the 9th.
        var response = await PostAsync(user.ToString(), """{"samples":[{"ts":"2025-11-09T04:30:00Z","type":"hr","value":1},{"ts":"2025-11-09T12:00:00Z","type":"hr","value":2}]}""");

        var keys = (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience)).GetProperty("tickets").EnumerateArray().Select(t => t.GetProperty("key").GetString()).ToList();
        Assert.Equal(2, keys.Count);
        Assert.Contains("day_local=2025-11-08", keys[0]);
        Assert.Contains("day_local=2025-11-09", keys[1]);

        // Both days' runs, the very ones the endpoint requested, complete and fill both mart rows.
        var requested = _tickets.Of(user);
        Assert.Equal(keys, requested.Select(t => t.Key));
        var runs = await Task.WhenAll(requested.Select(t => t.Completion)).WaitAsync(Patience);
        Assert.All(runs, r => Assert.True(r.Success, r.Error?.ToString()));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM marts.daily_features WHERE user_id = $1", user).WaitAsync(Patience));
    }

    [Theory]
    [InlineData("?tz=Mars/Olympus_Mons", "tz 'Mars/Olympus_Mons'")]
    [InlineData("?tz=Not A Zone", "tz 'Not A Zone'")]
    public async Task A_bad_time_zone_is_400_naming_it_and_nothing_is_inserted(string query, string expected)
    {
        var user = Guid.NewGuid();

        var response = await PostAsync(user.ToString(), """{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"hr","value":1}]}""", query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience)).GetProperty("error").GetString());
        Assert.Equal(0L, await SampleCountAsync(user));
    }

    [Theory]
    [InlineData(null, "X-User-Id header is required")]
    [InlineData("", "X-User-Id header is required")]
    [InlineData("not-a-uuid", "X-User-Id 'not-a-uuid' is not a UUID")]
    public async Task A_missing_or_malformed_user_id_is_400(string? user, string expected)
    {
        var response = await PostAsync(user, """{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"hr","value":1}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience)).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("""{"rows":[]}""", "\"samples\" array")]
    [InlineData("""{"samples":[]}""", "\"samples\" is empty")]
    [InlineData("""{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"hr","value":1},{"type":"hr","value":2}]}""", "samples[1].ts")]
    [InlineData("""{"samples":[{"ts":"2025-11-08T10:00:00","type":"hr","value":1}]}""", "samples[0].ts")]
    [InlineData("""{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"","value":1}]}""", "samples[0].type")]
    [InlineData("""{"samples":[{"ts":"2025-11-08T10:00:00Z","type":"hr","value":"72"}]}""", "samples[0].value")]
    public async Task A_malformed_body_is_400_naming_the_problem_and_nothing_is_inserted(string body, string expected)
    {
        var user = Guid.NewGuid();

        var response = await PostAsync(user.ToString(), body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience)).GetProperty("error").GetString());
        Assert.Equal(0L, await SampleCountAsync(user));
    }

    [Fact]
    public async Task Features_for_a_day_without_data_say_so_and_a_bad_day_is_400()
    {
        var user = Guid.NewGuid().ToString();

        var empty = await GetFeaturesAsync(user, "?tz=Europe/Paris&day=2020-01-01");
        var bad = await GetFeaturesAsync(user, "?day=01/02/2020");

        var json = await empty.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Patience);
        Assert.Equal(0, json.GetProperty("sample_count").GetInt64());
        Assert.Contains("never refreshed", json.GetProperty("trace").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("day '01/02/2020'", await bad.Content.ReadAsStringAsync().WaitAsync(Patience));
    }
}

/// <summary>Keeps the tickets the ingest endpoint got for each user's batches.</summary>
internal sealed class TicketRecorder : IBatchTicketObserver
{
    private readonly ConcurrentDictionary<Guid, ConcurrentQueue<RefreshTicket>> _byUser = new();

    public void Requested(Guid userId, IReadOnlyList<RefreshTicket> tickets)
    {
        var mine = _byUser.GetOrAdd(userId, _ => new ConcurrentQueue<RefreshTicket>());
        foreach (var ticket in tickets)
        {
            mine.Enqueue(ticket);
        }
    }

    public IReadOnlyList<RefreshTicket> Of(Guid userId) => _byUser.TryGetValue(userId, out var mine) ? [.. mine] : [];
}
