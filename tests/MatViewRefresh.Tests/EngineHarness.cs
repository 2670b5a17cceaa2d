using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Tests;

/// <summary>The engine over a recording executor and an in-memory catalog (no database), and the server errors it meets.</summary>
internal static class EngineHarness
{
    public static (IMaterializedViewRefresher Refresher, RecordingRefreshExecutor Executor) Create(FakeCatalog catalog, Action<MatViewRefreshOptions>? configure = null)
    {
        var executor = new RecordingRefreshExecutor();
        var services = new ServiceCollection()
            .AddSingleton<IRefreshExecutor>(executor)
            .AddSingleton<IMatViewCatalog>(catalog)
            .AddMatViewRefresh(o =>
            {
                o.AutoCreateSchema = false;
                o.RetryBaseDelay = TimeSpan.Zero;
                o.RetryMaxDelay = TimeSpan.Zero;
                configure?.Invoke(o);
            })
            .BuildServiceProvider();
        return (services.GetRequiredService<IMaterializedViewRefresher>(), executor);
    }

    public static PostgresException Pg(string sqlState) => new("failure " + sqlState, "ERROR", "ERROR", sqlState);

    /// <summary>An error raised by the REFRESH that refresh_view() ran, with the context PostgreSQL gives it.</summary>
    public static PostgresException RefreshFailed(string sqlState, bool concurrently) => new(
        "failure " + sqlState, "ERROR", "ERROR", sqlState,
        where: $"SQL statement \"REFRESH MATERIALIZED VIEW {(concurrently ? "CONCURRENTLY " : string.Empty)}public.mv\"\nPL/pgSQL function matview_refresh.refresh_view(text,text,text,bigint,boolean,text,text,text,integer,text,boolean) line 44 at EXECUTE");
}
