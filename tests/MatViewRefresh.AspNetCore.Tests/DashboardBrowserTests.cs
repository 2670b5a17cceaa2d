using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>
/// The status page in a real headless Chromium (the Debian package, driven by Playwright) against a real Kestrel on
/// 127.0.0.1. Fails, never skips, when chromium is missing: scripts/setup.sh installs it.
/// </summary>
public sealed partial class DashboardBrowserTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private WebApplication _app = null!;
    private string _address = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        var builder = TestApp.CreateBuilder(db.ConnectionString, TestApp.HierarchySchedule, kestrel: true);
        _app = await TestApp.StartAsync(builder, app => app.MapMatViewRefreshEndpoints("/ops/matviews", o =>
        {
            o.AllowAnonymous = true;
            o.Views = [.. DatabaseFixture.HierarchyViews, "public.mv_broken"];
        }));
        _address = _app.Urls.Single();
        Assert.StartsWith("http://127.0.0.1:", _address, StringComparison.Ordinal);
        _playwright = await Playwright.CreateAsync();
        _browser = await LaunchAsync(_playwright);
        SetDefaultExpectTimeout(30_000);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _app.StopAsync().WaitAsync(TestApp.Patience);
        await _app.DisposeAsync();
    }

    /// <summary>The system chromium, headless, as CI runs it; a clear failure when it is not installed.</summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: the browser tests need the Debian package chromium (bash scripts/setup.sh installs it).");
        return playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
    }

    [Fact]
    public async Task The_page_lists_the_views_refreshes_one_and_shows_a_failing_views_error()
    {
        var refresher = _app.Services.GetRequiredService<IMaterializedViewRefresher>();
        Assert.Equal(RefreshBatchStatus.Success, (await refresher.RefreshManyAsync(RefreshSelection.Views(DatabaseFixture.HierarchyViews))).Status);
        // The ancestors view was last refreshed three hours ago, as far as the log knows.
        await db.ExecuteAsync("""
            UPDATE matview_refresh.refresh_log
               SET data_as_of = data_as_of - interval '3 hours', last_refreshed_at = last_refreshed_at - interval '3 hours',
                   last_attempt_at = last_attempt_at - interval '3 hours'
             WHERE target = 'public.mv_entity_ancestors'
            """);
        var page = await _browser.NewPageAsync();
        var requested = new List<string>();
        page.Request += (_, request) => requested.Add(request.Url);

        await page.GotoAsync(_address + "/ops/matviews/dashboard");

        foreach (var view in DatabaseFixture.HierarchyViews.Append("mv_broken"))
        {
            await Expect(page.Locator($"tr[data-view='{view}'] td.view")).ToContainTextAsync(view);
        }

        var ancestors = page.Locator("tr[data-view='mv_entity_ancestors']");
        await Expect(ancestors.Locator(".age")).ToHaveTextAsync("3.0 h");
        await Expect(ancestors.Locator(".age")).ToHaveClassAsync(StaleClass());
        await Expect(page.Locator("#scheduler")).ToContainTextAsync("stopped");
        await Expect(page.Locator("tr[data-view='mv_broken'] .age")).ToHaveTextAsync("never refreshed");

        await ancestors.Locator("button").ClickAsync();

        await Expect(ancestors.Locator(".result")).ToContainTextAsync("refreshed in");
        await Expect(ancestors.Locator(".age")).ToHaveTextAsync(SecondsOld());
        await Expect(ancestors.Locator(".age")).ToHaveClassAsync(FreshClass());

        var broken = page.Locator("tr[data-view='mv_broken']");
        await broken.Locator("button").ClickAsync();

        await Expect(broken.Locator(".result")).ToContainTextAsync("failed: division by zero");
        await Expect(broken.Locator("td.error")).ToContainTextAsync("division by zero");
        Assert.All(requested, url => Assert.StartsWith(_address + "/ops/matviews/", url, StringComparison.Ordinal));
    }

    [GeneratedRegex(@"\bstale\b")]
    private static partial Regex StaleClass();

    [GeneratedRegex(@"\bfresh\b")]
    private static partial Regex FreshClass();

    [GeneratedRegex(@"^\d+\.\d s$")]
    private static partial Regex SecondsOld();
}
