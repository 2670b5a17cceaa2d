namespace MatViewRefresh;

/// <summary>How a scheduled run ended.</summary>
public enum RefreshScheduleOutcome
{
    /// <summary>Every selected view was refreshed.</summary>
    Succeeded = 0,

    /// <summary>Some views were refreshed, some failed or were skipped.</summary>
    PartiallySucceeded = 1,

    /// <summary>Nothing was refreshed: the batch failed, or the run threw.</summary>
    Failed = 2,

    /// <summary>Not run: the schedule was already running.</summary>
    Skipped = 3,

    /// <summary>Cancelled, for example by a stop that waited longer than the stop timeout.</summary>
    Cancelled = 4,

    /// <summary>Not run here: another instance claimed the tick.</summary>
    ClaimedElsewhere = 5,
}
