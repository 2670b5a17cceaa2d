namespace MatViewRefresh;

/// <summary>What became of one refresh.</summary>
public enum RefreshOutcome
{
    /// <summary>The view was refreshed and the refresh log updated in the same transaction.</summary>
    Succeeded = 0,

    /// <summary>The refresh failed; <see cref="RefreshResult.Error"/> says why. The failure is recorded in the history.</summary>
    Failed = 1,

    /// <summary>Another refresh of the same view was running (on any instance) and <see cref="RefreshOptions.SkipIfBusy"/> was set: this request was coalesced into it.</summary>
    Coalesced = 2,

    /// <summary>Not attempted because a view it depends on failed or was skipped in the same batch.</summary>
    Skipped = 3,
}
