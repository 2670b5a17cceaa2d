namespace MatViewRefresh;

/// <summary>Reads what the database says about materialized views.</summary>
internal interface IMatViewCatalog
{
    /// <summary>Describes one view (cached for <see cref="MatViewRefreshOptions.CatalogCacheDuration"/>).</summary>
    /// <exception cref="MaterializedViewNotFoundException">The name does not resolve to a materialized view.</exception>
    Task<MatViewInfo> DescribeAsync(QualifiedName name, CancellationToken cancellationToken);

    /// <summary>Checks that a function target's function exists and takes its named parameters (cached like views).</summary>
    /// <exception cref="RefreshFunctionNotFoundException">No function of that name takes those parameters.</exception>
    Task ValidateFunctionAsync(RefreshTarget target, CancellationToken cancellationToken);

    /// <summary>Reads every materialized view and the dependencies between them (never cached).</summary>
    Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken);

    /// <summary>Forgets what is cached of a view (after the server contradicted it).</summary>
    void Invalidate(QualifiedName name);

    /// <summary>Notes that a view is populated (after a successful refresh).</summary>
    void MarkPopulated(QualifiedName name);
}
