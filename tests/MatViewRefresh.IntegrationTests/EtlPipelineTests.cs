using EtlPipeline;

namespace MatViewRefresh.IntegrationTests;

/// <summary>The EtlPipeline sample (seed 001) run through its entry point against the shared PostgreSQL.</summary>
public sealed class EtlPipelineTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>
{
    private const string DailySalesDiff = """
        SELECT count(*) FROM (
            (SELECT day, orders, revenue FROM etl.daily_sales
             EXCEPT SELECT (ordered_at AT TIME ZONE 'UTC')::date, count(*), sum(amount) FROM etl.orders GROUP BY 1)
            UNION ALL
            (SELECT (ordered_at AT TIME ZONE 'UTC')::date, count(*), sum(amount) FROM etl.orders GROUP BY 1
             EXCEPT SELECT day, orders, revenue FROM etl.daily_sales)) d
        """;

    private const string RegionSalesDiff = """
        SELECT count(*) FROM (
            (SELECT day, region, orders, revenue FROM etl.daily_region_sales
             EXCEPT SELECT (ordered_at AT TIME ZONE 'UTC')::date, region, count(*), sum(amount) FROM etl.orders GROUP BY 1, 2)
            UNION ALL
            (SELECT (ordered_at AT TIME ZONE 'UTC')::date, region, count(*), sum(amount) FROM etl.orders GROUP BY 1, 2
             EXCEPT SELECT day, region, orders, revenue FROM etl.daily_region_sales)) d
        """;

    private const string TopCustomersDiff = """
        SELECT count(*) FROM (
            (SELECT customer, orders, spent FROM etl.mv_top_customers
             EXCEPT SELECT customer, count(*), sum(amount) FROM etl.orders GROUP BY 1)
            UNION ALL
            (SELECT customer, count(*), sum(amount) FROM etl.orders GROUP BY 1
             EXCEPT SELECT customer, orders, spent FROM etl.mv_top_customers)) d
        """;

    private async Task<(int Code, string[] Lines, string Errors)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = await EtlApp.RunAsync([.. args, "--connection", db.ConnectionString], output, errors);
        return (code, output.ToString().Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries), errors.ToString());
    }

    private static string LineOf(string[] lines, string name) =>
        Assert.Single(lines, l => l.Contains(" " + name + " ", StringComparison.Ordinal));

    private async Task AssertMartsMatchOrdersAsync()
    {
        Assert.Equal(0L, await db.ScalarAsync<long>(DailySalesDiff));
        Assert.Equal(0L, await db.ScalarAsync<long>(RegionSalesDiff));
        Assert.Equal(0L, await db.ScalarAsync<long>(TopCustomersDiff));
    }

    [Fact]
    public async Task Smart_then_incremental_then_full_keep_the_marts_equal_to_a_recomputation_from_orders()
    {
        var (code, lines, errors) = await RunAsync("--smart");
        Assert.True(code == 0, string.Join('\n', lines) + errors);
        Assert.Equal(EtlApp.GeneratedOrders + EtlApp.IngestedOrders, await db.ScalarAsync<long>("SELECT count(*) FROM etl.orders"));
        Assert.Contains(lines, l => l.StartsWith("✓ Data ingestion completed and committed!", StringComparison.Ordinal));
        Assert.Contains("Refreshing 4 views (smart)...", lines);
        var daily = LineOf(lines, "etl.daily_sales");
        Assert.StartsWith("✓ ok", daily, StringComparison.Ordinal);
        Assert.Contains(" full ", daily, StringComparison.Ordinal);
        Assert.Contains("(smart chose full", daily, StringComparison.Ordinal);
        Assert.Contains("-0 +366 rows", daily, StringComparison.Ordinal);
        Assert.Contains("(auto chose full", LineOf(lines, "etl.mv_top_customers"), StringComparison.Ordinal);
        Assert.StartsWith("✓ ok", LineOf(lines, "etl.mv_monthly_sales"), StringComparison.Ordinal);
        Assert.StartsWith("✓ ok", LineOf(lines, "etl.daily_region_sales"), StringComparison.Ordinal);
        Assert.Matches(@"^Refreshed 4 views in \d+\.\d\ds$", lines[^1]);
        await AssertMartsMatchOrdersAsync();

        (code, lines, errors) = await RunAsync("--incremental", "--days", "3");
        Assert.True(code == 0, string.Join('\n', lines) + errors);
        Assert.Contains("Refreshing 4 views (incremental, last 3 days)...", lines);
        daily = LineOf(lines, "etl.daily_sales");
        Assert.Contains(" incremental ", daily, StringComparison.Ordinal);
        Assert.Contains("-3 +3 rows", daily, StringComparison.Ordinal);
        Assert.Contains("-12 +12 rows", LineOf(lines, "etl.daily_region_sales"), StringComparison.Ordinal);
        Assert.StartsWith("✓ ok", LineOf(lines, "etl.mv_top_customers"), StringComparison.Ordinal);
        Assert.Matches(@"^Refreshed 4 views in \d+\.\d\ds$", lines[^1]);
        await AssertMartsMatchOrdersAsync();
        Assert.Equal(2L * EtlApp.IngestedOrders, await db.ScalarAsync<long>("SELECT orders FROM etl.daily_sales ORDER BY day DESC LIMIT 1"));

        (code, lines, errors) = await RunAsync("--full");
        Assert.True(code == 0, string.Join('\n', lines) + errors);
        daily = LineOf(lines, "etl.daily_sales");
        Assert.Contains(" full ", daily, StringComparison.Ordinal);
        Assert.Contains("-366 +366 rows", daily, StringComparison.Ordinal);
        Assert.Contains(" full ", LineOf(lines, "etl.mv_monthly_sales"), StringComparison.Ordinal);
        Assert.Matches(@"^Refreshed 4 views in \d+\.\d\ds$", lines[^1]);
        await AssertMartsMatchOrdersAsync();

        // --skip-refresh ingests only: the marts now lag the orders by one ingestion.
        (code, lines, errors) = await RunAsync("--skip-refresh");
        Assert.True(code == 0, string.Join('\n', lines) + errors);
        Assert.Equal("Refresh skipped (--skip-refresh).", lines[^1]);
        Assert.DoesNotContain(lines, l => l.StartsWith("Refreshed", StringComparison.Ordinal));
        Assert.Equal(3L * EtlApp.IngestedOrders, await db.ScalarAsync<long>("SELECT orders FROM etl.daily_sales ORDER BY day DESC LIMIT 1"));

        // --views limits the refresh to the named ones.
        (code, lines, errors) = await RunAsync("--incremental", "--views", "daily_sales", "etl.mv_top_customers");
        Assert.True(code == 0, string.Join('\n', lines) + errors);
        Assert.Contains("-2 +2 rows", LineOf(lines, "etl.daily_sales"), StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.Contains("etl.daily_region_sales", StringComparison.Ordinal) || l.Contains("etl.mv_monthly_sales", StringComparison.Ordinal));
        Assert.Matches(@"^Refreshed 2 views in \d+\.\d\ds$", lines[^1]);
        Assert.Equal(0L, await db.ScalarAsync<long>(DailySalesDiff));
        Assert.Equal(0L, await db.ScalarAsync<long>(TopCustomersDiff));
        Assert.NotEqual(0L, await db.ScalarAsync<long>(RegionSalesDiff));
    }

    [Theory]
    [InlineData("Unknown view 'nope'. Known: etl.daily_sales, etl.daily_region_sales, etl.mv_top_customers, etl.mv_monthly_sales.", "--views", "nope")]
    [InlineData("Unknown argument '--fast'.", "--fast")]
    [InlineData("--days needs a whole number of days from 1 to 36600, not 'x'.", "--incremental", "--days", "x")]
    [InlineData("--full cannot be combined with --smart: choose one of --smart, --full, --incremental.", "--smart", "--full")]
    [InlineData("--days applies to --incremental and --smart, not --full.", "--full", "--days", "3")]
    [InlineData("--views needs at least one name: etl.daily_sales, etl.daily_region_sales, etl.mv_top_customers, etl.mv_monthly_sales.", "--views", "--full")]
    public async Task Bad_arguments_exit_2_naming_the_argument_before_touching_the_database(string message, params string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = await EtlApp.RunAsync(args, output, errors);
        Assert.Equal(EtlApp.ExitUsage, code);
        Assert.StartsWith(message + Environment.NewLine + "Usage: EtlPipeline", errors.ToString(), StringComparison.Ordinal);
        Assert.Equal(string.Empty, output.ToString());
    }
}
