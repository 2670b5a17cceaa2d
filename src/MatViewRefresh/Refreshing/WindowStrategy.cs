namespace MatViewRefresh;

/// <summary>How a <see cref="RefreshTargetKind.Window"/> target (a mart table kept by date window) is refreshed.</summary>
public enum WindowStrategy
{
    /// <summary>
    /// <see cref="Full"/> when the refresh history holds no successful full refresh of the target within
    /// <see cref="RefreshOptions.FullRefreshAfter"/>, otherwise <see cref="Incremental"/>. Decided in the refresh transaction,
    /// under the target's lock; the result's <see cref="RefreshResult.ModeReason"/> says which and why, and the age of the newest data.
    /// </summary>
    Smart = 0,

    /// <summary>Deletes the rows of the last <see cref="RefreshOptions.Days"/> local days and inserts the query's rows for them, in one transaction.</summary>
    Incremental = 1,

    /// <summary>
    /// Deletes every row and inserts the query's rows over all time, in one transaction (<c>DELETE</c>, not <c>TRUNCATE</c>:
    /// readers keep seeing the old rows until the commit instead of waiting behind an <c>ACCESS EXCLUSIVE</c> lock).
    /// </summary>
    Full = 2,
}
