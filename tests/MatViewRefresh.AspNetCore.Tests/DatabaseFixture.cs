using MatViewRefresh.Testing;
using Npgsql;

namespace MatViewRefresh.AspNetCore.Tests;

/// <summary>One throwaway PostgreSQL for the whole test run (stopped at process exit, or by its watchdog if the run is killed).</summary>
internal static class SharedServer
{
    private static readonly Lazy<Task<ThrowawayPostgres>> Server = new(() => ThrowawayPostgres.StartAsync());

    public static Task<ThrowawayPostgres> GetAsync() => Server.Value;
}

/// <summary>A fresh database per test class, on the shared server, holding the hierarchy views of seed 003. Fails (never skips) when no server can be had.</summary>
public sealed class DatabaseFixture : IAsyncLifetime
{
    /// <summary>
    /// Seed 003's three hierarchy views over an entities table, and <c>mv_broken</c>, whose refresh always fails
    /// (division by zero, SQLSTATE 22012).
    /// </summary>
    public const string HierarchySql = """
        CREATE TABLE entities (id int PRIMARY KEY, parent_id int REFERENCES entities, name text NOT NULL);
        INSERT INTO entities VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'c');
        CREATE MATERIALIZED VIEW mv_entity_ancestors AS
            WITH RECURSIVE anc AS (
                SELECT id, parent_id AS ancestor_id, 1 AS depth FROM entities WHERE parent_id IS NOT NULL
                UNION ALL
                SELECT a.id, e.parent_id, a.depth + 1 FROM anc a JOIN entities e ON e.id = a.ancestor_id WHERE e.parent_id IS NOT NULL)
            SELECT * FROM anc;
        CREATE UNIQUE INDEX ON mv_entity_ancestors (id, ancestor_id);
        CREATE MATERIALIZED VIEW mv_descendant_counts AS
            SELECT ancestor_id AS id, count(*) AS descendants FROM mv_entity_ancestors GROUP BY ancestor_id;
        CREATE UNIQUE INDEX ON mv_descendant_counts (id);
        CREATE MATERIALIZED VIEW mv_entity_hierarchy_stats AS
            SELECT count(*) AS entities, coalesce(max(depth), 0) AS max_depth FROM entities LEFT JOIN mv_entity_ancestors USING (id);
        CREATE TABLE divisor (d int NOT NULL);
        INSERT INTO divisor VALUES (0);
        CREATE MATERIALIZED VIEW mv_broken AS SELECT 1 / (SELECT d FROM divisor) AS x WITH NO DATA;
        """;

    public static readonly string[] HierarchyViews = ["mv_entity_ancestors", "mv_descendant_counts", "mv_entity_hierarchy_stats"];

    public string ConnectionString { get; private set; } = string.Empty;

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var server = await SharedServer.GetAsync();
        ConnectionString = await server.CreateDatabaseAsync();
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await ExecuteAsync(HierarchySql);
    }

    public async Task DisposeAsync() => await DataSource.DisposeAsync();

    public async Task ExecuteAsync(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Awaits a condition the test cannot be told about directly, polling until a deadline.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Timed out waiting for: " + what);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20));
        }
    }
}
