// IngestApi: refresh-on-ingest. The server comes from ConnectionStrings:Default (ConnectionStrings__Default) or
// MATVIEWREFRESH_CONNECTION; without either, a throwaway local PostgreSQL is started. --urls chooses the address.
using IngestApi;
using MatViewRefresh.Testing;
using Npgsql;

var builder = WebApplication.CreateBuilder(args);
var connectionString = builder.Configuration.GetConnectionString("Default") ?? Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
await using var throwaway = string.IsNullOrWhiteSpace(connectionString)
    ? await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null })
    : null;
if (throwaway is not null)
{
    connectionString = await throwaway.CreateDatabaseAsync("ingest");
    Console.WriteLine($"Using a throwaway PostgreSQL ({throwaway.ClusterFolder}); set ConnectionStrings__Default to use your own.");
}

IngestApp.ConfigureServices(builder, connectionString!);
var app = builder.Build();
await IngestApp.EnsureSchemaAsync(app.Services.GetRequiredService<NpgsqlDataSource>());
IngestApp.MapEndpoints(app);
await app.RunAsync();
