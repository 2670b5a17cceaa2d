// JobProgressApi (seed 002): job progress from a materialized view with freshness fields. The server comes from ConnectionStrings:Default (ConnectionStrings__Default)
// or MATVIEWREFRESH_CONNECTION; without either, a throwaway local PostgreSQL is started. --urls chooses the address
// (default http://127.0.0.1:5091); try /jobs/abc-123 and the status page at /api/matviews/dashboard.
using MatViewRefresh.Testing;
using Npgsql;
using JobProgressApi;

var builder = WebApplication.CreateBuilder(args);
var connectionString = builder.Configuration.GetConnectionString("Default") ?? Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
await using var throwaway = string.IsNullOrWhiteSpace(connectionString)
    ? await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null })
    : null;
if (throwaway is not null)
{
    connectionString = await throwaway.CreateDatabaseAsync("job_progress");
    Console.WriteLine($"Using a throwaway PostgreSQL ({throwaway.ClusterFolder}); set ConnectionStrings__Default to use your own.");
}

JobProgressApp.ConfigureServices(builder, connectionString!);
var app = builder.Build();
await JobProgressApp.EnsureSchemaAsync(app.Services.GetRequiredService<NpgsqlDataSource>());
JobProgressApp.MapEndpoints(app);
await app.RunAsync();
