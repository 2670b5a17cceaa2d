namespace MatViewRefresh;

/// <summary>Stable event ids of MatViewRefresh's log messages, grouped by area.</summary>
public static class MatViewRefreshEventIds
{
    /// <summary>A view was refreshed.</summary>
    public const int RefreshSucceeded = 1000;

    /// <summary>A refresh failed after its last attempt.</summary>
    public const int RefreshFailed = 1001;

    /// <summary>A refresh attempt failed transiently and will be retried.</summary>
    public const int RefreshRetrying = 1002;

    /// <summary>Auto mode fell back from CONCURRENTLY to a full refresh.</summary>
    public const int RefreshFellBack = 1003;

    /// <summary>A refresh was coalesced into one already running.</summary>
    public const int RefreshCoalesced = 1004;

    /// <summary>A view of a batch was skipped because a view it depends on did not refresh.</summary>
    public const int RefreshSkipped = 1005;

    /// <summary>A failed refresh could not be written to the history.</summary>
    public const int FailureNotRecorded = 1006;

    /// <summary>A batch finished.</summary>
    public const int BatchCompleted = 1100;

    /// <summary>The refresh log schema was created or checked.</summary>
    public const int SchemaEnsured = 1200;
}
