namespace MatViewRefresh;

/// <summary>Reads what the database says about materialized views and function targets.</summary>
internal interface IMatViewCatalog
{
    /// <summary>Describes one view as the catalog says now (never cached), or <see langword="null"/> when it is not a materialized view.</summary>
    Task<MatViewInfo?> FindAsync(QualifiedName name, CancellationToken cancellationToken);

    /// <summary>The exception for a name that is not a materialized view: what it is instead, and close names.</summary>
    Task<MaterializedViewNotFoundException> NotFoundAsync(QualifiedName name, CancellationToken cancellationToken);

    /// <summary>Checks that a function target's function exists and takes its named parameters (cached for <see cref="MatViewRefreshOptions.CatalogCacheDuration"/>).</summary>
    /// <returns>Whether a function it may call returns a set (<c>SETOF</c>, <c>TABLE</c>); <see langword="true"/> when unknown.</returns>
    /// <exception cref="RefreshFunctionNotFoundException">No function of that name takes those parameters.</exception>
    Task<bool> ValidateFunctionAsync(RefreshTarget target, CancellationToken cancellationToken);

    /// <summary>Reads every materialized view and the dependencies between them (never cached).</summary>
    Task<MatViewGraph> LoadGraphAsync(CancellationToken cancellationToken);
}
