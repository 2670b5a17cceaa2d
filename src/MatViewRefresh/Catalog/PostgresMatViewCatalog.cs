using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Reads materialized views and their dependencies from <c>pg_class</c>, <c>pg_index</c>, <c>pg_rewrite</c> and <c>pg_depend</c>.</summary>
internal sealed class PostgresMatViewCatalog(RefreshDataSource dataSource, IOptions<MatViewRefreshOptions> options, TimeProvider time) : IMatViewCatalog
{
    /// <summary>
    /// Whether the materialized view <c>c</c> has an index REFRESH ... CONCURRENTLY accepts (matview.c,
    /// is_usable_unique_index): unique, immediate, valid, btree, not partial, over plain columns only.
    /// </summary>
    internal const string HasUsableUniqueIndex = """
        EXISTS (SELECT 1
                  FROM pg_index i
                  JOIN pg_class ic ON ic.oid = i.indexrelid
                  JOIN pg_am am ON am.oid = ic.relam
                 WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid
                   AND am.amname = 'btree' AND i.indpred IS NULL AND i.indexprs IS NULL
                   AND i.indnatts > 0 AND 0 <> ALL (i.indkey::int2[]))
        """;

    private const string ViewColumns = $$"""
        SELECT c.oid::bigint, n.nspname, c.relname, c.relispopulated,
               {{HasUsableUniqueIndex}}
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'm'
        """;

    private const string OneView = ViewColumns + " AND n.nspname = $1 AND c.relname = $2";

    // Who reads whom, as pg_depend records it: the rewrite rules of views and materialized views reference relations and
    // functions; functions with a SQL-standard body (RETURN …, BEGIN ATOMIC) reference relations and functions too.
    // Function nodes are negative oids so that they never collide with relations. plpgsql bodies are not tracked by PostgreSQL.
    private const string DependencyEdges = """
        SELECT r.ev_class::bigint,
               CASE WHEN d.refclassid = 'pg_proc'::regclass THEN -d.refobjid::bigint ELSE d.refobjid::bigint END
          FROM pg_rewrite r
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
          JOIN pg_class dependent ON dependent.oid = r.ev_class AND dependent.relkind IN ('m', 'v')
          LEFT JOIN pg_class referenced ON d.refclassid = 'pg_class'::regclass AND referenced.oid = d.refobjid
         WHERE d.refobjid <> r.ev_class
           AND (referenced.relkind IN ('m', 'v') OR d.refclassid = 'pg_proc'::regclass)
        UNION
        SELECT -d.objid::bigint,
               CASE WHEN d.refclassid = 'pg_proc'::regclass THEN -d.refobjid::bigint ELSE d.refobjid::bigint END
          FROM pg_depend d
          LEFT JOIN pg_class referenced ON d.refclassid = 'pg_class'::regclass AND referenced.oid = d.refobjid
         WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'n'
           AND (referenced.relkind IN ('m', 'v') OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid <> d.objid))
        """;

    private const string RelationKind = """
        SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2
        """;

    private const string Functions = """
        SELECT p.prokind::text, p.pronargs, p.pronargdefaults, p.proargnames, p.proargmodes::text[],
               pg_get_function_identity_arguments(p.oid), p.proretset
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1 AND p.proname = $2
        """;

    private readonly ConcurrentDictionary<(QualifiedName, string), (DateTimeOffset Expires, bool ReturnsSet)> _functions = new();

    public async Task<MatViewInfo?> FindAsync(QualifiedName name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.Value.CreateCommand(OneView);
        command.Parameters.Add(new() { Value = name.Schema });
        command.Parameters.Add(new() { Value = name.Name });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadView(reader) : null;
    }

    public async Task<MaterializedViewNotFoundException> NotFoundAsync(QualifiedName name, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await NotFoundAsync(connection, name, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> ValidateFunctionAsync(RefreshTarget target, CancellationToken cancellationToken)
    {
        var given = target.Parameters.Select(p => p.Name).ToList();
        var cacheKey = (target.Name, string.Join('\0', given.Order(StringComparer.Ordinal)));
        if (_functions.TryGetValue(cacheKey, out var known) && known.Expires > time.GetUtcNow())
        {
            return known.ReturnsSet;
        }

        var signatures = new List<string>();
        var problems = new List<string>();
        var matched = false;
        var returnsSet = false;
        await using (var command = dataSource.Value.CreateCommand(Functions))
        {
            command.Parameters.Add(new() { Value = target.Name.Schema });
            command.Parameters.Add(new() { Value = target.Name.Name });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var kind = reader.GetString(0);
                int count = reader.GetInt16(1), defaults = reader.GetInt16(2);
                var names = reader.IsDBNull(3) ? [] : reader.GetFieldValue<string[]>(3);
                var modes = reader.IsDBNull(4) ? null : reader.GetFieldValue<string[]>(4);
                signatures.Add(reader.GetString(5));
                var problem = FunctionProblem(kind, count, defaults, names, modes, given);
                if (problem is null)
                {
                    matched = true;
                    returnsSet |= reader.GetBoolean(6);
                }
                else
                {
                    problems.Add(problem);
                }
            }
        }

        if (!matched)
        {
            throw new RefreshFunctionNotFoundException(target.Name, given, signatures, problems.Count == 1 ? problems[0] : null);
        }

        var duration = options.Value.CatalogCacheDuration;
        if (duration > TimeSpan.Zero)
        {
            _functions[cacheKey] = (time.GetUtcNow() + duration, returnsSet);
        }

        return returnsSet;
    }

    /// <summary>Why a function cannot be called with the given named parameters, or <see langword="null"/> when it can.</summary>
    internal static string? FunctionProblem(string kind, int count, int defaults, string[] names, string[]? modes, IReadOnlyList<string> given)
    {
        if (kind != "f")
        {
            return kind == "p" ? "It is a procedure; a refresh target must be a function." : "It is not a plain function.";
        }

        // Input parameters: modes i (in), b (inout), v (variadic); all of them when proargmodes is null.
        var inputs = new List<string>();
        for (var i = 0; i < names.Length; i++)
        {
            if (modes is null || modes[i] is "i" or "b" or "v")
            {
                inputs.Add(names[i]);
            }
        }

        if (inputs.Count < count || inputs.Take(count).Any(string.IsNullOrEmpty))
        {
            return "Its parameters have no names, so they cannot be passed by name.";
        }

        var unknown = given.Where(g => !inputs.Contains(g, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
        {
            return $"It has no parameter named {string.Join(", ", unknown)}.";
        }

        var missing = inputs.Take(count - defaults).Where(r => !given.Contains(r, StringComparer.Ordinal)).ToList();
        return missing.Count > 0 ? $"Parameter(s) {string.Join(", ", missing)} have no default and are not given." : null;
    }

    public async Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands = { new(ViewColumns), new(DependencyEdges), new("SELECT nspname FROM pg_namespace") },
        };
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var views = new List<MatViewInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            views.Add(ReadView(reader));
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var edges = new List<(long, long)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            edges.Add((reader.GetInt64(0), reader.GetInt64(1)));
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var schemas = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            schemas.Add(reader.GetString(0));
        }

        return new MatViewGraph(views, edges, schemas);
    }

    private static MatViewInfo ReadView(NpgsqlDataReader reader) =>
        new(reader.GetInt64(0), new QualifiedName(reader.GetString(1), reader.GetString(2)), reader.GetBoolean(3), reader.GetBoolean(4));

    private static async Task<MaterializedViewNotFoundException> NotFoundAsync(NpgsqlConnection connection, QualifiedName name, CancellationToken cancellationToken)
    {
        string? kind;
        await using (var command = new NpgsqlCommand(RelationKind, connection) { Parameters = { new() { Value = name.Schema }, new() { Value = name.Name } } })
        {
            kind = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        }

        var existing = new List<QualifiedName>();
        await using (var command = new NpgsqlCommand("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm'", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                existing.Add(new QualifiedName(reader.GetString(0), reader.GetString(1)));
            }
        }

        return new MaterializedViewNotFoundException(name, NameSuggestions.For(name, existing), DescribeKind(kind));
    }

    internal static string? DescribeKind(string? relkind) => relkind switch
    {
        null => null,
        "r" or "p" => "a table",
        "v" => "a plain view",
        "i" or "I" => "an index",
        "S" => "a sequence",
        "f" => "a foreign table",
        "c" => "a composite type",
        _ => $"a relation of kind '{relkind}'",
    };
}
