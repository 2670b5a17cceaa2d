using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh.Benchmarks;

/// <summary>
/// Two identical event tables, <c>capture.watched</c> (capture triggers of a window target, days of its <c>day</c> column)
/// and <c>capture.unwatched</c> (none), and the inserts the capture benchmarks time on both: a 1-row INSERT and a
/// 1,000-row batch INSERT, each its own transaction (autocommit), the rows' days spread over 3 days.
/// </summary>
internal sealed class CaptureSetup(NpgsqlDataSource dataSource, ServiceProvider services) : IAsyncDisposable
{
    public const int BatchRows = 1_000;

    private readonly int[] _amounts = [.. Enumerable.Range(0, BatchRows).Select(i => i % 97)];
    private readonly DateOnly[] _days = [.. Enumerable.Range(0, BatchRows).Select(i => new DateOnly(2026, 3, 1).AddDays(i % 3))];

    public NpgsqlDataSource DataSource => dataSource;

    public static async Task<CaptureSetup> CreateAsync(NpgsqlDataSource dataSource)
    {
        await using (var command = dataSource.CreateCommand("""
            CREATE SCHEMA IF NOT EXISTS capture;
            CREATE TABLE capture.watched (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, day date NOT NULL, amount int NOT NULL);
            CREATE INDEX ON capture.watched (day);
            CREATE TABLE capture.unwatched (LIKE capture.watched INCLUDING ALL);
            CREATE TABLE capture.daily (day date PRIMARY KEY, total bigint NOT NULL);
            """))
        {
            await command.ExecuteNonQueryAsync();
        }

        var services = RefreshFixture.BuildServices(dataSource);
        await services.GetRequiredService<IRefreshWatcher>().WatchAsync(
            RefreshTarget.Window("capture.daily", "day", "SELECT day, sum(amount) FROM capture.watched WHERE day >= @from AND day < @to GROUP BY day"));
        var setup = new CaptureSetup(dataSource, services);
        for (var i = 0; i < 50; i++)
        {
            await setup.InsertOneAsync("capture.watched");
            await setup.InsertOneAsync("capture.unwatched");
            await setup.InsertBatchAsync("capture.watched");
            await setup.InsertBatchAsync("capture.unwatched");
        }

        return setup;
    }

    /// <summary>One row, one statement, one transaction (autocommit).</summary>
    public async Task InsertOneAsync(string table)
    {
        await using var command = dataSource.CreateCommand($"INSERT INTO {table} (day, amount) VALUES ($1, $2)");
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Date, Value = _days[0] });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = 42 });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>1,000 rows over 3 days, one statement (<c>unnest</c> of two arrays), one transaction.</summary>
    public async Task InsertBatchAsync(string table)
    {
        await using var command = dataSource.CreateCommand($"INSERT INTO {table} (day, amount) SELECT * FROM unnest($1::date[], $2::int[])");
        command.Parameters.Add(new NpgsqlParameter { Value = _days });
        command.Parameters.Add(new NpgsqlParameter { Value = _amounts });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// The batch INSERT into <paramref name="table"/> under <c>EXPLAIN (ANALYZE, FORMAT JSON)</c>, rolled back: the server's
    /// execution time and the time spent in its triggers (the capture triggers' own cost, free of client and network noise).
    /// </summary>
    public async Task<(double ExecutionMs, double TriggersMs)> ExplainBatchAsync(string table)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand($"EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO {table} (day, amount) SELECT * FROM unnest($1::date[], $2::int[])", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = _days });
        command.Parameters.Add(new NpgsqlParameter { Value = _amounts });
        var json = (string)(await command.ExecuteScalarAsync())!;
        await transaction.RollbackAsync();
        using var document = System.Text.Json.JsonDocument.Parse(json);
        var plan = document.RootElement[0];
        var triggers = plan.TryGetProperty("Triggers", out var list) ? list.EnumerateArray().Sum(t => t.GetProperty("Time").GetDouble()) : 0;
        return (plan.GetProperty("Execution Time").GetDouble(), triggers);
    }

    /// <summary>
    /// <paramref name="count"/> INSERTs into <paramref name="table"/>, each committed, in one <c>DO</c> block on the server:
    /// per transaction, what a write costs the server without the client, the network or the pool. Returns ms per transaction.
    /// </summary>
    public async Task<double> ServerLoopAsync(string table, bool batch, int count)
    {
        var insert = batch
            ? $"INSERT INTO {table} (day, amount) SELECT DATE '2026-03-01' + (g % 3), g FROM generate_series(1, {BatchRows}) g"
            : $"INSERT INTO {table} (day, amount) VALUES (DATE '2026-03-01', 42)";
        await using var command = dataSource.CreateCommand($"DO $$ BEGIN FOR i IN 1..{count} LOOP {insert}; COMMIT; END LOOP; END $$");
        command.CommandTimeout = 600;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await command.ExecuteNonQueryAsync();
        return System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds / count;
    }

    /// <summary>Empties the request queue (the benchmarks have no worker).</summary>
    public async Task ClearRequestsAsync()
    {
        await using var command = dataSource.CreateCommand("TRUNCATE matview_refresh.refresh_requests");
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await services.DisposeAsync();
}
