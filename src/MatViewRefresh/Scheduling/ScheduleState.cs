namespace MatViewRefresh;

/// <summary>One schedule's mutable state in <see cref="RefreshScheduler"/>; guarded by the scheduler's lock.</summary>
internal sealed class ScheduleState(ScheduleDefinition definition)
{
    public ScheduleDefinition Definition { get; } = definition;

    public ITimer? Timer { get; set; }

    /// <summary>Bumped on every re-arm and at stop: a timer callback from an older generation does nothing.</summary>
    public int Generation { get; set; }

    public DateTimeOffset? NextTick { get; set; }

    public DateTimeOffset FireAt { get; set; }

    public ScheduleRunHandle? Current { get; set; }

    public RefreshScheduleRun? LastRun { get; set; }

    public long Succeeded { get; set; }

    public long Failed { get; set; }

    public long Skipped { get; set; }

    public long ClaimedElsewhere { get; set; }

    public DateTimeOffset? DataAsOf { get; set; }
}

/// <summary>Why a run starts: its tick came, a missed tick is caught up at start, or someone forced it.</summary>
internal enum ScheduleRunKind
{
    Tick,
    CatchUp,
    Forced,
}

/// <summary>A run in progress: its cancellation and its end (never faults; null when a catch-up found nothing to catch up).</summary>
internal sealed class ScheduleRunHandle(ScheduleRunKind kind, DateTimeOffset? tick)
{
    public ScheduleRunKind Kind { get; } = kind;

    public DateTimeOffset? Tick { get; } = tick;

    public CancellationTokenSource Cancellation { get; } = new();

    public TaskCompletionSource<RefreshScheduleRun?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
