namespace MatViewRefresh;

/// <summary>How a materialized view is refreshed.</summary>
public enum RefreshMode
{
    /// <summary>
    /// <c>CONCURRENTLY</c> when the catalog says the view is populated and has a usable unique index
    /// (unique, valid, immediate, btree, no <c>WHERE</c>, plain columns only); otherwise a full refresh.
    /// If the server still refuses <c>CONCURRENTLY</c>, falls back to a full refresh and says why.
    /// </summary>
    Auto = 0,

    /// <summary><c>REFRESH MATERIALIZED VIEW</c>: rebuilds the view under an exclusive lock that blocks readers.</summary>
    Full = 1,

    /// <summary><c>REFRESH MATERIALIZED VIEW CONCURRENTLY</c>: readers are not blocked; fails when the view has no usable unique index or is not populated.</summary>
    Concurrent = 2,
}
