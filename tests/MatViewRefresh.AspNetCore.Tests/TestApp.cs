using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>A host app as a user writes it: its own NpgsqlDataSource, AddMatViewRefresh, and the endpoints mapped.</summary>
internal static class TestApp
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static WebApplicationBuilder CreateBuilder(string connectionString, Action<MatViewRefreshOptions>? configure = null, RecordingLoggerProvider? logs = null, bool kestrel = false)
    {
        var builder = WebApplication.CreateBuilder();
        if (kestrel)
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        else
        {
            builder.WebHost.UseTestServer();
        }

        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        builder.Services.AddMatViewRefresh(o =>
        {
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(100);
            o.MaxRetryAttempts = 1;
            o.LockTimeout = TimeSpan.FromSeconds(20);
            o.StartScheduler = false;
            configure?.Invoke(o);
        });
        return builder;
    }

    /// <summary>A schedule over the three hierarchy views every 300 s (no tick comes during a test), started by the API.</summary>
    public static void HierarchySchedule(MatViewRefreshOptions o)
    {
        o.Schedules["hierarchy"] = new RefreshScheduleOptions
        {
            Views = [.. DatabaseFixture.HierarchyViews],
            Interval = TimeSpan.FromSeconds(300),
            MaxCatchUpRuns = 0,
        };
    }

    public static async Task<WebApplication> StartAsync(WebApplicationBuilder builder, Action<WebApplication> map)
    {
        var app = builder.Build();
        map(app);
        await app.StartAsync().WaitAsync(Patience);
        return app;
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(this HttpClient client, HttpMethod method, string url)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(method, url)).WaitAsync(Patience);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, body);
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> GetJsonAsync(this HttpClient client, string url) => client.SendAsync(HttpMethod.Get, url);

    public static Task<(HttpStatusCode Status, JsonElement Body)> PostJsonAsync(this HttpClient client, string url) => client.SendAsync(HttpMethod.Post, url);

    public static string[] Names(this JsonElement obj) => [.. obj.EnumerateObject().Select(p => p.Name)];
}

/// <summary>Authenticates a request carrying <c>X-Test-User</c>; enough to prove the group's authorization applies.</summary>
internal sealed class TestAuthHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Test";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Request.Headers.TryGetValue("X-Test-User", out var user))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user.ToString())], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }
}

/// <summary>Keeps every log entry, for assertions on what was logged.</summary>
public sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly List<(string Category, LogLevel Level, EventId Id, string Message)> _entries = [];

    public IReadOnlyList<(string Category, LogLevel Level, EventId Id, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(RecordingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._entries)
            {
                owner._entries.Add((category, logLevel, eventId, formatter(state, exception)));
            }
        }
    }
}
