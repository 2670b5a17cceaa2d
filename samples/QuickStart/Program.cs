// QuickStart: three materialized views (one reading another), refreshed in dependency order.
// With MATVIEWREFRESH_CONNECTION set it uses that server; otherwise it starts a throwaway local PostgreSQL.
using System.Globalization;
using MatViewRefresh;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

var connectionString = Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
var startClock = System.Diagnostics.Stopwatch.StartNew();
await using var throwaway = string.IsNullOrWhiteSpace(connectionString) ? await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null }) : null;
if (throwaway is not null)
{
    connectionString = await throwaway.CreateDatabaseAsync("quickstart");
    Console.WriteLine($"Started a throwaway PostgreSQL in {startClock.Elapsed.TotalSeconds:F1} s at {throwaway.ClusterFolder} (set MATVIEWREFRESH_CONNECTION to use your own).");
}

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString!));
builder.Services.AddMatViewRefresh(builder.Configuration.GetSection(MatViewRefreshOptions.SectionName));
using var host = builder.Build();
await host.StartAsync();

var dataSource = host.Services.GetRequiredService<NpgsqlDataSource>();
await using (var setup = dataSource.CreateCommand("""
    CREATE SCHEMA IF NOT EXISTS shop;
    CREATE TABLE IF NOT EXISTS shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, ordered_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO shop.orders (customer, amount, ordered_at)
        SELECT 'customer-' || (g % 17), (g % 90) + 10, now() - (g % 30) * interval '1 day' FROM generate_series(1, 2000) g;
    CREATE MATERIALIZED VIEW IF NOT EXISTS shop.daily_sales AS
        SELECT ordered_at::date AS day, count(*) AS orders, sum(amount) AS revenue FROM shop.orders GROUP BY 1 WITH NO DATA;
    CREATE UNIQUE INDEX IF NOT EXISTS daily_sales_day ON shop.daily_sales (day);
    CREATE MATERIALIZED VIEW IF NOT EXISTS shop.sales_summary AS
        SELECT min(day) AS first_day, max(day) AS last_day, sum(revenue) AS revenue FROM shop.daily_sales WITH NO DATA;
    CREATE MATERIALIZED VIEW IF NOT EXISTS shop.top_customers AS
        SELECT customer, sum(amount) AS spent FROM shop.orders GROUP BY customer ORDER BY spent DESC LIMIT 5 WITH NO DATA;
    """))
{
    await setup.ExecuteNonQueryAsync();
}

var refresher = host.Services.GetRequiredService<IMaterializedViewRefresher>();
var log = host.Services.GetRequiredService<IRefreshLog>();
var selection = RefreshSelection.Schemas("shop");

var plan = await refresher.PlanAsync(selection);
Console.WriteLine();
Console.WriteLine("Plan (dry run):");
foreach (var step in plan.Steps)
{
    var after = step.DependsOn.Count == 0 ? "" : $" after {string.Join(", ", step.DependsOn)}";
    Console.WriteLine($"  level {step.Level}: {step.View} — {step.ModeReason}{after}");
}

for (var round = 1; round <= 2; round++)
{
    var batch = await refresher.RefreshManyAsync(selection, new RefreshOptions { Trigger = "quickstart" });
    Console.WriteLine();
    Console.WriteLine($"Refresh {round}: {batch.Status} in {batch.Duration.TotalMilliseconds:F0} ms");
    foreach (var result in batch.Results)
    {
        var outcome = result.Success ? "ok" : $"{result.Outcome}: {result.Error}";
        Console.WriteLine($"  {result.Target,-20} {outcome,-6} {result.ModeUsed,-10} {result.Duration.TotalMilliseconds,7:F1} ms  attempts={result.Attempts}  ({result.ModeReason})");
    }
}

Console.WriteLine();
Console.WriteLine("Freshness:");
foreach (var step in plan.Steps)
{
    var freshness = await log.GetFreshnessAsync(RefreshTarget.View(step.View));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  {step.View,-20} data as of {freshness?.DataAsOf:O}  age {freshness?.Age?.TotalMilliseconds:F0} ms  took {freshness?.Duration?.TotalMilliseconds:F1} ms ({freshness?.Rating})  stale(>1 min): {freshness?.IsStale(TimeSpan.FromMinutes(1))}"));
}

var summary = await log.GetSummaryAsync(since: DateTimeOffset.UtcNow.AddHours(-1));
Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"Last hour: {summary.Count} runs, {summary.SuccessRate:F0}% ok, p50 {summary.P50?.TotalMilliseconds:F1} ms, p95 {summary.P95?.TotalMilliseconds:F1} ms, p99 {summary.P99?.TotalMilliseconds:F1} ms"));

await host.StopAsync();
