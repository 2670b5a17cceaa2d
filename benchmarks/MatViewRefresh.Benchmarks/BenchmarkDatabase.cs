using MatViewRefresh.Testing;

namespace MatViewRefresh.Benchmarks;

/// <summary>The server benchmarks run on: MATVIEWREFRESH_CONNECTION when set, else a throwaway local PostgreSQL.</summary>
internal static class BenchmarkDatabase
{
    /// <summary>Starts (or connects to) the server and returns a database named <c>bench</c> on it.</summary>
    /// <param name="serverSettings">Extra settings of a throwaway server; not applied to MATVIEWREFRESH_CONNECTION.</param>
    public static async Task<(ThrowawayPostgres? Server, string ConnectionString)> StartAsync(IReadOnlyDictionary<string, string>? serverSettings = null)
    {
        var configured = Environment.GetEnvironmentVariable("MATVIEWREFRESH_CONNECTION");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return (null, configured);
        }

        var options = new ThrowawayPostgresOptions { ConnectionString = null };
        foreach (var (name, value) in serverSettings ?? new Dictionary<string, string>())
        {
            options.ServerSettings[name] = value;
        }

        var server = await ThrowawayPostgres.StartAsync(options);
        return (server, await server.CreateDatabaseAsync("bench"));
    }
}
