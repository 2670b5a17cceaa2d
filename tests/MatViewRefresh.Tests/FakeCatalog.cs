namespace MatViewRefresh.Tests;

/// <summary>A catalog held in memory: views by name, and "reads from" edges between them (oids are list positions).</summary>
internal sealed class FakeCatalog : IMatViewCatalog
{
    private readonly List<MatViewInfo> _views = [];
    private readonly List<(long, long)> _edges = [];
    private readonly List<string> _schemas = ["public"];

    public FakeCatalog View(string name, bool populated = true, bool uniqueIndex = true, params string[] readsFrom)
    {
        var info = new MatViewInfo(_views.Count + 1, QualifiedName.Parse(name), populated, uniqueIndex);
        _views.Add(info);
        if (!_schemas.Contains(info.Name.Schema))
        {
            _schemas.Add(info.Name.Schema);
        }

        foreach (var upstream in readsFrom)
        {
            _edges.Add((info.Oid, Oid(upstream)));
        }

        return this;
    }

    /// <summary>A plain view (not materialized) in the graph: oid outside the view list.</summary>
    public FakeCatalog PlainView(long oid, params string[] readsFrom)
    {
        foreach (var upstream in readsFrom)
        {
            _edges.Add((oid, Oid(upstream)));
        }

        return this;
    }

    public FakeCatalog Reads(string dependent, long plainViewOid)
    {
        _edges.Add((Oid(dependent), plainViewOid));
        return this;
    }

    public long Oid(string name) => _views.Single(v => v.Name == QualifiedName.Parse(name)).Oid;

    public MatViewGraph Graph() => new(_views, _edges, _schemas);

    public Task<MatViewInfo?> FindAsync(QualifiedName name, CancellationToken cancellationToken) =>
        Task.FromResult(_views.SingleOrDefault(v => v.Name == name));

    public Task<MaterializedViewNotFoundException> NotFoundAsync(QualifiedName name, CancellationToken cancellationToken) =>
        Task.FromResult(new MaterializedViewNotFoundException(name, NameSuggestions.For(name, _views.Select(v => v.Name))));

    /// <summary>Function targets that do not exist: validating them throws.</summary>
    public HashSet<string> MissingFunctions { get; } = [];

    public Task<bool> ValidateFunctionAsync(RefreshTarget target, CancellationToken cancellationToken) =>
        MissingFunctions.Contains(target.Name.ToString())
            ? throw new RefreshFunctionNotFoundException(target.Name, [.. target.Parameters.Select(p => p.Name)], [], null)
            : Task.FromResult(true);

    public Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken) => Task.FromResult(Graph());
}
