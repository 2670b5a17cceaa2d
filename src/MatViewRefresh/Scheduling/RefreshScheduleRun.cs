namespace MatViewRefresh;

/// <summary>One run of a schedule (or a run that did not happen, with the reason in <see cref="Outcome"/>).</summary>
public sealed record RefreshScheduleRun
{
    /// <summary>The schedule's name; also the run's trigger in the refresh history.</summary>
    public required string Schedule { get; init; }

    /// <summary>The tick the run is for; <see langword="null"/> for a forced run.</summary>
    public DateTimeOffset? Tick { get; init; }

    /// <summary>When the run started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>How long the run took.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>How it ended.</summary>
    public required RefreshScheduleOutcome Outcome { get; init; }

    /// <summary>The batch's result, when the batch ran.</summary>
    public RefreshBatchResult? Batch { get; init; }

    /// <summary>The results of the schedule's window targets, in order, when they ran. <value>The default is empty.</value></summary>
    public IReadOnlyList<RefreshResult> Windows { get; init; } = [];

    /// <summary>Why it failed, was skipped or cancelled; <see langword="null"/> when it succeeded.</summary>
    public string? Error { get; init; }
}
