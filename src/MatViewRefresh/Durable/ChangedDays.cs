namespace MatViewRefresh;

/// <summary>An inclusive range of local days.</summary>
internal readonly record struct DayRange(DateOnly First, DateOnly Last);

/// <summary>
/// What the requests a durable run covers ask for: a full refresh, the configured refresh, and/or these merged day ranges
/// (window targets). INTEGRATION SEAM: until the refresher takes explicit days (RefreshOptions, from the change-capture
/// work), <see cref="DurableRefreshWorker.RunOptions"/> refreshes as configured and these ranges are only logged.
/// </summary>
internal sealed record ChangedDays(IReadOnlyList<DayRange> Ranges, bool AsConfigured, bool Full)
{
    public static ChangedDays None { get; } = new([], AsConfigured: false, Full: false);

    /// <summary>Merges overlapping and adjacent ranges (2025-03-01..03 and 03-04..05 make 03-01..05), sorted.</summary>
    public static IReadOnlyList<DayRange> Merge(IEnumerable<DayRange> ranges)
    {
        var sorted = ranges.OrderBy(r => r.First).ThenBy(r => r.Last).ToList();
        var merged = new List<DayRange>(sorted.Count);
        foreach (var range in sorted)
        {
            if (range.Last < range.First)
            {
                throw new ArgumentException($"Day range {range.First:yyyy-MM-dd}..{range.Last:yyyy-MM-dd} is reversed.", nameof(ranges));
            }

            if (merged.Count > 0 && merged[^1] is var last && (range.First <= last.Last || range.First.DayNumber == last.Last.DayNumber + 1))
            {
                if (range.Last > last.Last)
                {
                    merged[^1] = last with { Last = range.Last };
                }
            }
            else
            {
                merged.Add(range);
            }
        }

        return merged;
    }

    /// <summary>Folds claimed request groups (days or none, full flag) into what one run must cover.</summary>
    public static ChangedDays Of(IEnumerable<(DateOnly? First, DateOnly? Last, bool Full)> requests)
    {
        var ranges = new List<DayRange>();
        var asConfigured = false;
        var full = false;
        foreach (var (first, last, isFull) in requests)
        {
            full |= isFull;
            if (first is { } f && last is { } l)
            {
                ranges.Add(new DayRange(f, l));
            }
            else if (!isFull)
            {
                asConfigured = true;
            }
        }

        return new ChangedDays(Merge(ranges), asConfigured, full);
    }

    public override string ToString() =>
        Full ? "full" : string.Join(", ", (AsConfigured ? ["as configured"] : Array.Empty<string>())
            .Concat(Ranges.Select(r => r.First == r.Last ? $"{r.First:yyyy-MM-dd}" : $"{r.First:yyyy-MM-dd}..{r.Last:yyyy-MM-dd}")));
}

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
