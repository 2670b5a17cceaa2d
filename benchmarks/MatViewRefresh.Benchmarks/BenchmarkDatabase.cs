using MatViewRefresh.Testing;

namespace MatViewRefresh.Benchmarks;

/// <summary>The server benchmarks run on: MATVIEWREFRESH_CONNECTION when set, else a throwaway local PostgreSQL.</summary>
internal static class BenchmarkDatabase
{
    public static async Task<(ThrowawayPostgres? Server, string ConnectionString)> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return (null, configured);
        }

        var server = await ThrowawayPostgres.StartAsync(new ThrowawayPostgresOptions { ConnectionString = null });
        return (server, await server.CreateDatabaseAsync("bench"));
    }
}
