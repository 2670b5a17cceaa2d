namespace MatViewRefresh;

/// <summary>Which materialized views a batch refreshes: listed views, or every view of some schemas.</summary>
public sealed record RefreshSelection
{
    private readonly IReadOnlyList<RefreshTarget> _views;

    private RefreshSelection(IReadOnlyList<RefreshTarget> views, IReadOnlyList<string> schemas)
    {
        _views = views;
        ViewNames = [.. views.Select(v => v.Name)];
        SchemaNames = schemas;
    }

    /// <summary>The listed views.</summary>
    public IReadOnlyList<QualifiedName> ViewNames { get; }

    /// <summary>The schemas whose every materialized view is selected (exact names, as stored).</summary>
    public IReadOnlyList<string> SchemaNames { get; }

    /// <summary>Also refresh every materialized view downstream of the selected ones. <value>The default is <see langword="false"/>.</value></summary>
    public bool IncludeDependents { get; init; }

    /// <summary>Selects the listed views, named as in SQL (see <see cref="QualifiedName.Parse(string, string)"/>).</summary>
    /// <exception cref="ArgumentException">A name is not valid SQL; the message names it.</exception>
    public static RefreshSelection Views(params IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return new RefreshSelection([.. names.Select(RefreshTarget.View)], []);
    }

    /// <summary>Selects the listed views.</summary>
    public static RefreshSelection Views(params IEnumerable<RefreshTarget> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        return new RefreshSelection([.. targets.Select(t => t.Kind == RefreshTargetKind.MaterializedView ? t : throw new ArgumentException($"{t} is a function target; a selection lists materialized views.", nameof(targets)))], []);
    }

    /// <summary>Selects every materialized view of the given schemas, named as in SQL (unquoted names fold to lower case).</summary>
    /// <exception cref="ArgumentException">A schema name is not valid SQL; the message names it.</exception>
    public static RefreshSelection Schemas(params IEnumerable<string> schemas)
    {
        ArgumentNullException.ThrowIfNull(schemas);
        return new RefreshSelection([], [.. schemas.Select(s => QualifiedName.ParseIdentifier(s, nameof(schemas)))]);
    }

    /// <summary>This selection plus every view downstream of it.</summary>
    public RefreshSelection WithDependents() => this with { IncludeDependents = true };

    /// <summary>This selection with names written without a schema placed in <paramref name="schema"/>.</summary>
    internal RefreshSelection WithDefaultSchema(string schema) =>
        _views.Any(v => v.SchemaImplied) ? new RefreshSelection([.. _views.Select(v => v.WithDefaultSchema(schema))], SchemaNames) { IncludeDependents = IncludeDependents } : this;
}
