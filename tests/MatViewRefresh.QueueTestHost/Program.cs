// A MatViewRefresh app instance in its own OS process, for the durable queue's tests (the test kills it with SIGKILL).
//   worker  <connection string> <settle ms>   runs the durable worker until stdin closes; prints "ready" once started
//   enqueue <connection string> <key>         inserts a source row for <key> and enqueues its refresh in the same transaction,
//                                             commits, prints "committed", then waits to be killed (its worker's settle delay is 1 h)
using System.Globalization;
using MatViewRefresh;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: worker <connection string> <settle ms> | enqueue <connection string> <key>");
    return 2;
}

var (mode, connectionString) = (args[0], args[1]);
var settle = mode == "worker" ? TimeSpan.FromMilliseconds(int.Parse(args[2], CultureInfo.InvariantCulture)) : TimeSpan.FromHours(1);
var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders(); // stdout is the test's control channel: no per-run log lines to fill its pipe
builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString));
builder.Services.AddMatViewRefresh(o =>
{
    o.Durable.Enabled = true;
    o.Durable.PollInterval = TimeSpan.FromMilliseconds(50);
    o.Durable.Resolver = QueueTestTargets.Resolve;
    o.Debounce.DelayMin = settle;
    o.Debounce.DelayMax = settle;
    o.Debounce.MaxWait = settle + TimeSpan.FromMilliseconds(400);
    o.Debounce.MinInterval = TimeSpan.Zero;
    o.Debounce.FailureRetryDelay = TimeSpan.FromMilliseconds(50);
    o.Debounce.FailureRetryMaxDelay = TimeSpan.FromMilliseconds(500);
    o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
    o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
});
using var host = builder.Build();
await host.StartAsync();
if (mode == "worker")
{
    Console.WriteLine("ready");
    await Console.In.ReadToEndAsync(); // the test closes stdin to stop us gracefully, or kills us
    await host.StopAsync();
    return 0;
}

var key = int.Parse(args[2], CultureInfo.InvariantCulture);
var dataSource = host.Services.GetRequiredService<NpgsqlDataSource>();
await using (var connection = await dataSource.OpenConnectionAsync())
await using (var transaction = await connection.BeginTransactionAsync())
{
    await using (var insert = new NpgsqlCommand("INSERT INTO q.src (k, v) VALUES ($1, 1)", connection, transaction))
    {
        insert.Parameters.Add(new() { Value = key });
        await insert.ExecuteNonQueryAsync();
    }

    await host.Services.GetRequiredService<IRefreshQueue>().EnqueueAsync(QueueTestTargets.Key(key), transaction, CancellationToken.None);
    await transaction.CommitAsync();
}

Console.WriteLine("committed");
await Task.Delay(Timeout.Infinite);
return 0;

/// <summary>The function targets of the queue tests: q.refresh_key(k) recomputes one key's row of q.mart from q.src.</summary>
public static class QueueTestTargets
{
    private const string Prefix = "q.refresh_key(k=";

    public static RefreshTarget Key(int key) => RefreshTarget.Function("q.refresh_key", ("k", key));

    /// <summary>Resolves <c>q.refresh_key(k=123)</c> (the text a request stores) back to its target.</summary>
    public static RefreshTarget? Resolve(string text) =>
        text.StartsWith(Prefix, StringComparison.Ordinal) && text.EndsWith(')')
        && int.TryParse(text.AsSpan(Prefix.Length, text.Length - Prefix.Length - 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var key)
            ? Key(key) : null;
}
