using System.Net;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>The endpoints are never public by accident: the app does not start unless they are protected or opened on purpose.</summary>
public sealed class PublicByAccidentGuardTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private WebApplicationBuilder Builder(RecordingLoggerProvider? logs = null)
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, TestApp.HierarchySchedule, logs);
        builder.Services.AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }

    [Fact]
    public async Task Without_authorization_or_opt_in_the_app_fails_to_start_with_a_clear_message()
    {
        await using var app = Builder().Build();
        app.MapMatViewRefreshEndpoints();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync().WaitAsync(TestApp.Patience));

        Assert.Contains("MatViewRefresh endpoints under '/api/matviews'", error.Message, StringComparison.Ordinal);
        Assert.Contains(".RequireAuthorization(...)", error.Message, StringComparison.Ordinal);
        Assert.Contains("AllowAnonymous = true", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllowAnonymous_on_the_group_without_the_option_still_fails_to_start()
    {
        await using var app = Builder().Build();
        app.MapMatViewRefreshEndpoints().RequireAuthorization().AllowAnonymous();

        await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync().WaitAsync(TestApp.Patience));
    }

    [Fact]
    public async Task RequireAuthorization_called_after_the_map_protects_every_route_and_the_dashboard()
    {
        await using var app = Builder().Build();
        var group = app.MapMatViewRefreshEndpoints();
        group.RequireAuthorization();
        await app.StartAsync().WaitAsync(TestApp.Patience);
        using var client = app.GetTestClient();

        foreach (var (method, url) in new[]
        {
            (HttpMethod.Post, "/api/matviews/refresh"), (HttpMethod.Get, "/api/matviews/refresh/status"),
            (HttpMethod.Post, "/api/matviews/refresh/automated/start"), (HttpMethod.Post, "/api/matviews/refresh/automated/stop"),
            (HttpMethod.Post, "/api/matviews/refresh/automated/force"), (HttpMethod.Get, "/api/matviews/refresh/automated/metrics"),
            (HttpMethod.Get, "/api/matviews/freshness"), (HttpMethod.Get, "/api/matviews/freshness/mv_entity_ancestors"),
            (HttpMethod.Get, "/api/matviews/dashboard"),
        })
        {
            using var response = await client.SendAsync(new HttpRequestMessage(method, url));
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {url}: {response.StatusCode}");
        }

        using var authorized = new HttpRequestMessage(HttpMethod.Get, "/api/matviews/freshness");
        authorized.Headers.Add("X-Test-User", "ops");
        using var ok = await client.SendAsync(authorized);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task A_protected_outer_group_counts()
    {
        await using var app = Builder().Build();
        app.MapGroup("/ops").RequireAuthorization().MapMatViewRefreshEndpoints("/matviews");
        await app.StartAsync().WaitAsync(TestApp.Patience);
        using var client = app.GetTestClient();

        using var response = await client.GetAsync("/ops/matviews/freshness");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task An_authorization_fallback_policy_counts()
    {
        var builder = Builder();
        builder.Services.AddAuthorizationBuilder().SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        await using var app = builder.Build();
        app.MapMatViewRefreshEndpoints();
        await app.StartAsync().WaitAsync(TestApp.Patience);
        using var client = app.GetTestClient();

        using var response = await client.GetAsync("/api/matviews/freshness");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task Opting_into_anonymous_access_serves_the_routes_and_logs_a_warning_at_start()
    {
        var logs = new RecordingLoggerProvider();
        await using var app = Builder(logs).Build();
        app.MapMatViewRefreshEndpoints("/api/matviews", o => o.AllowAnonymous = true);
        await app.StartAsync().WaitAsync(TestApp.Patience);

        var warning = Assert.Single(logs.Entries, e => e.Id.Id == MatViewRefreshEventIds.EndpointsAllowAnonymous);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("/api/matviews", warning.Message, StringComparison.Ordinal);
        using var client = app.GetTestClient();
        using var response = await client.GetAsync("/api/matviews/freshness");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task Unprotected_in_a_route_group_the_app_fails_to_start_too()
    {
        await using var app = Builder().Build();
        app.MapGroup("/ops").MapMatViewRefreshEndpoints("/matviews");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync().WaitAsync(TestApp.Patience));

        Assert.Contains("MatViewRefresh endpoints under '/matviews'", error.Message, StringComparison.Ordinal);
        Assert.False(app.Services.GetRequiredService<IRefreshScheduler>().IsStarted);
        await app.StopAsync();
    }

    [Fact]
    public async Task Opting_into_anonymous_access_on_a_route_group_logs_the_warning_too()
    {
        var logs = new RecordingLoggerProvider();
        await using var app = Builder(logs).Build();
        app.MapGroup("/ops").MapMatViewRefreshEndpoints("/matviews", o => o.AllowAnonymous = true);
        await app.StartAsync().WaitAsync(TestApp.Patience);
        using var client = app.GetTestClient();

        using var response = await client.GetAsync("/ops/matviews/freshness");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var warning = Assert.Single(logs.Entries, e => e.Id.Id == MatViewRefreshEventIds.EndpointsAllowAnonymous);
        Assert.Equal(LogLevel.Warning, warning.Level);
        await app.StopAsync();
    }

    [Theory]
    [InlineData("not a view;")]
    [InlineData("a.b.c")]
    public void A_bad_configured_view_name_is_rejected_at_the_map_call(string view)
    {
        var app = Builder().Build();

        var error = Assert.Throws<ArgumentException>(() => app.MapMatViewRefreshEndpoints("/x", o => o.Views = [view]));

        Assert.Contains($"'{view}'", error.Message, StringComparison.Ordinal);
    }
}
