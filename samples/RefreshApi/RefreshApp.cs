using MatViewRefresh;
using MatViewRefresh.AspNetCore;
using Npgsql;

namespace RefreshApi;

/// <summary>
/// Seed 003: a REST refresh API over three hierarchy views under /api/entities (refresh, status, automated
/// start/stop/force/metrics), the automated refresh every 300 s once started (it starts stopped, as in the seed),
/// a health check at /health and the status page at /api/entities/dashboard.
/// </summary>
public static class RefreshApp
{
    public const string Prefix = "/api/entities";

    public static readonly IReadOnlyList<string> Views = ["mv_entity_ancestors", "mv_descendant_counts", "mv_entity_hierarchy_stats"];

    /// <summary>Registers the database, MatViewRefresh bound from the "MatViewRefresh" section, and the health check.</summary>
    public static void ConfigureServices(WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddSingleton(NpgsqlDataSource.Create(connectionString));
        builder.Services.AddMatViewRefresh(builder.Configuration.GetSection(MatViewRefreshOptions.SectionName));
        builder.Services.AddHealthChecks().AddMatViewRefresh(Views, maxAge: TimeSpan.FromMinutes(10));
    }

    /// <summary>Creates the entities and the three views (idempotent).</summary>
    public static async Task EnsureSchemaAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        await using var stream = typeof(RefreshApp).Assembly.GetManifestResourceStream("RefreshApi.schema.sql")!;
        using var reader = new StreamReader(stream);
        await using var command = dataSource.CreateCommand(await reader.ReadToEndAsync(cancellationToken));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public static void MapEndpoints(WebApplication app)
    {
        // The sample binds to 127.0.0.1 and serves the routes anonymously on purpose (RefreshApi:AllowAnonymous; a
        // warning is logged at start). A real app protects the group instead: .RequireAuthorization("ops").
        var allowAnonymous = app.Configuration.GetValue("RefreshApi:AllowAnonymous", false);
        app.MapMatViewRefreshEndpoints(Prefix, o =>
        {
            o.AllowAnonymous = allowAnonymous;
            o.StaleAfter = TimeSpan.FromMinutes(10);
            // Seed 003's status carries its app's own cache statistics; this sample has no caches of its own.
            o.StatusFields = (_, _) => Task.FromResult<IReadOnlyDictionary<string, object?>>(new Dictionary<string, object?>
            {
                ["cache_metrics"] = new Dictionary<string, object> { ["l1_cache"] = new { }, ["l2_cache"] = new { }, ["l3_cache"] = new { }, ["l4_cache"] = new { }, ["overall"] = new { } },
            });
        });
        app.MapHealthChecks("/health");

        // A read served from the views: an entity's ancestors, nearest first.
        app.MapGet(Prefix + "/{id:int}/ancestors", async (int id, NpgsqlDataSource dataSource, CancellationToken cancellationToken) =>
        {
            await using var command = dataSource.CreateCommand("SELECT ancestor_id, depth FROM mv_entity_ancestors WHERE id = $1 ORDER BY depth");
            command.Parameters.Add(new() { Value = id });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var ancestors = new List<Ancestor>();
            while (await reader.ReadAsync(cancellationToken))
            {
                ancestors.Add(new Ancestor(reader.GetInt32(0), reader.GetInt32(1)));
            }

            return Results.Ok(new { id, ancestors });
        });
    }
}

/// <summary>One ancestor of an entity.</summary>
/// <param name="Id">The ancestor.</param>
/// <param name="Depth">1 for the parent, 2 for the grandparent, and so on.</param>
public sealed record Ancestor(int Id, int Depth);
