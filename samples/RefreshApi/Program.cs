// RefreshApi (seed 003): the REST refresh API. The server comes from ConnectionStrings:Default (ConnectionStrings__Default)
// or MATVIEWREFRESH_CONNECTION; without either, a throwaway local PostgreSQL is started. --urls chooses the address
// (default http://127.0.0.1:5090); the status page is at /api/entities/dashboard.
using MatViewRefresh.Testing;
using Npgsql;
using RefreshApi;

var builder = WebApplication.CreateBuilder(args);
var connectionString = builder.Configuration.GetConnectionString("Default") ?? Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
await using var throwaway = string.IsNullOrWhiteSpace(connectionString)
    ? await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null })
    : null;
if (throwaway is not null)
{
    connectionString = await throwaway.CreateDatabaseAsync("refresh_api");
    Console.WriteLine($"Using a throwaway PostgreSQL ({throwaway.ClusterFolder}); set ConnectionStrings__Default to use your own.");
}

RefreshApp.ConfigureServices(builder, connectionString!);
var app = builder.Build();
await RefreshApp.EnsureSchemaAsync(app.Services.GetRequiredService<NpgsqlDataSource>());
RefreshApp.MapEndpoints(app);
await app.RunAsync();
