namespace MatViewRefresh;

/// <summary>One row of the <c>refresh_requests</c> table as a worker claimed it: its days (both or neither) and its full flag.</summary>
internal readonly record struct RefreshRequestRow(DateOnly? FirstDay, DateOnly? LastDay, bool FullRefresh);

/// <summary>
/// What a set of claimed requests of one target asks for: a full refresh (any row with <c>full_refresh</c>), the target's
/// usual refresh (any row without days), and the merged days the others changed. For the worker of the durable queue:
/// <see cref="Apply"/> turns it into the options of the one run that covers them all.
/// </summary>
internal sealed record ChangeCaptureRequests(bool Full, bool AsConfigured, IReadOnlyList<DayRange> Days)
{
    /// <summary>Coalesces request rows: full wins; rows without days ask for the usual refresh; the days are merged (sorted, overlapping and adjacent runs joined).</summary>
    /// <exception cref="ArgumentException">A row has one day but not the other, or its last day before its first; the message names it.</exception>
    public static ChangeCaptureRequests From(IEnumerable<RefreshRequestRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        bool full = false, configured = false;
        var days = new List<DayRange>();
        foreach (var row in rows)
        {
            full |= row.FullRefresh;
            switch (row.FirstDay, row.LastDay)
            {
                case (null, null):
                    configured = true;
                    break;
                case ({ } first, { } last) when last >= first:
                    days.Add(new DayRange(first, last));
                    break;
                default:
                    throw new ArgumentException(
                        $"A refresh request has first_day {Text(row.FirstDay)} and last_day {Text(row.LastDay)}: give both days or neither, the last not before the first.", nameof(rows));
            }
        }

        return full ? new ChangeCaptureRequests(true, false, []) : new ChangeCaptureRequests(false, configured, DayRanges.Merge(days));
    }

    /// <summary>For the log: <c>full</c>, or the merged days, and <c>as configured</c> when a request named no days.</summary>
    public override string ToString() =>
        Full ? "full" : string.Join(", ", (AsConfigured ? ["as configured"] : Array.Empty<string>()).Concat(Days.Select(d => d.ToString())));

    private static string Text(DateOnly? day) => day is { } d ? DayRange.Format(d) : "NULL";

    /// <summary>
    /// The options of the run covering the requests, for a window target whose usual refresh is <paramref name="options"/>:
    /// full → <see cref="WindowStrategy.Full"/>; only days → exactly those days (incremental); days and a request without days
    /// → those days plus the usual last <see cref="RefreshOptions.Days"/> days, all incremental; otherwise the usual options.
    /// A target whose usual strategy is <see cref="WindowStrategy.Full"/> stays full. Views and functions ignore days: use the options as they are.
    /// </summary>
    public RefreshOptions Apply(RefreshOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Full)
        {
            return options with { Strategy = WindowStrategy.Full, DayRanges = null };
        }

        if (Days.Count == 0 || options.Strategy == WindowStrategy.Full)
        {
            return options;
        }

        var days = Days;
        if (AsConfigured)
        {
            var usual = LocalWindow.LastDays(
                now, options.Days ?? MaterializedViewRefresher.DefaultWindowDays, options.TimeZone ?? MaterializedViewRefresher.DefaultWindowTimeZone);
            days = DayRanges.Merge([.. days, new DayRange(usual.FromDay, usual.ToDay.AddDays(-1))]);
        }

        return options with { Strategy = WindowStrategy.Incremental, Days = null, DayRanges = days };
    }
}
