namespace MatViewRefresh;

/// <summary>The durable worker's timing rules, as pure functions of the debounce settings (shared with the SQL that finds due targets).</summary>
internal static class DurableTiming
{
    /// <summary>The wait before retrying a target after its <paramref name="failures"/>-th consecutive failure: doubling from FailureRetryDelay, capped.</summary>
    public static TimeSpan Backoff(int failures, RefreshDebounceOptions options)
    {
        if (failures <= 0)
        {
            return TimeSpan.Zero;
        }

        var ticks = options.FailureRetryDelay.Ticks * Math.Pow(2, Math.Min(failures - 1, 62));
        return ticks >= options.FailureRetryMaxDelay.Ticks ? options.FailureRetryMaxDelay : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>
    /// When a target with pending requests is due, as the debouncer decides it: a settle delay after the newest request, but no
    /// later than MaxWait after the oldest; not before MinInterval after the last run started; not before a failure's retry time.
    /// The worker computes the same in SQL (<see cref="DurableSql"/>) over every target at once.
    /// </summary>
    public static DateTimeOffset Due(DateTimeOffset oldest, DateTimeOffset newest, DateTimeOffset? lastRunAt, DateTimeOffset? retryAt, RefreshDebounceOptions options)
    {
        var settled = newest + options.DelayMin;
        var latest = oldest + options.MaxWait;
        var due = settled < latest ? settled : latest;
        if (lastRunAt is { } last && last + options.MinInterval > due)
        {
            due = last + options.MinInterval;
        }

        if (retryAt is { } retry && retry > due)
        {
            due = retry;
        }

        return due;
    }
}
