namespace MatViewRefresh;

/// <summary>What the catalog says of one materialized view.</summary>
/// <param name="Oid">The view's <c>pg_class</c> oid.</param>
/// <param name="Name">Its name.</param>
/// <param name="IsPopulated">Whether it holds data (<c>relispopulated</c>).</param>
/// <param name="HasUsableUniqueIndex">Whether it has an index that <c>REFRESH … CONCURRENTLY</c> accepts: unique, valid, immediate, btree, no <c>WHERE</c>, plain columns only.</param>
internal sealed record MatViewInfo(long Oid, QualifiedName Name, bool IsPopulated, bool HasUsableUniqueIndex);
