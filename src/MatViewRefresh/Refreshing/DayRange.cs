using System.Globalization;
using System.Text;

namespace MatViewRefresh;

/// <summary>
/// A run of local calendar days, both ends <b>inclusive</b>: <c>new DayRange(2026-03-01, 2026-03-03)</c> is three days.
/// Used by <see cref="RefreshOptions.DayRanges"/> to refresh exactly the given days of a window target.
/// </summary>
public readonly record struct DayRange
{
    /// <summary>The days from <paramref name="first"/> to <paramref name="last"/>, both included.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="last"/> is before <paramref name="first"/>; the message names both.</exception>
    public DayRange(DateOnly first, DateOnly last)
    {
        if (last < first)
        {
            throw new ArgumentOutOfRangeException(
                nameof(last), last, $"The day range {Format(first)}..{Format(last)} ends before it starts; both ends are inclusive, so a single day is {Format(first)}..{Format(first)}.");
        }

        First = first;
        Last = last;
    }

    /// <summary>The first day of the range (included).</summary>
    public DateOnly First { get; }

    /// <summary>The last day of the range (included).</summary>
    public DateOnly Last { get; }

    /// <summary>How many days the range holds (at least 1).</summary>
    public int DayCount => Last.DayNumber - First.DayNumber + 1;

    /// <summary>One day.</summary>
    public static DayRange Single(DateOnly day) => new(day, day);

    /// <summary>The range as <c>2026-03-01..2026-03-03</c>, or <c>2026-03-01</c> for one day.</summary>
    public override string ToString() => First == Last ? Format(First) : $"{Format(First)}..{Format(Last)}";

    internal static string Format(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}

/// <summary>Merging and describing sets of <see cref="DayRange"/>.</summary>
internal static class DayRanges
{
    /// <summary>How many runs a history mode lists before it says how many more there are.</summary>
    private const int ListedRuns = 5;

    /// <summary>The ranges sorted and merged: overlapping and adjacent ranges become one (03-01..03 and 03-04 → 03-01..04).</summary>
    public static IReadOnlyList<DayRange> Merge(IEnumerable<DayRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        var merged = new List<DayRange>();
        foreach (var range in ranges.OrderBy(r => r.First).ThenBy(r => r.Last))
        {
            if (merged.Count > 0 && range.First.DayNumber <= merged[^1].Last.DayNumber + 1)
            {
                var last = merged[^1];
                if (range.Last > last.Last)
                {
                    merged[^1] = new DayRange(last.First, range.Last);
                }
            }
            else
            {
                merged.Add(range);
            }
        }

        return merged;
    }

    /// <summary>
    /// The mode recorded in the log and history: <c>incremental (5 days: 2026-03-01..03, 2026-03-07, 2026-04-30..05-01)</c>;
    /// after five runs, <c>… and 3 more runs</c>.
    /// </summary>
    public static string Mode(IReadOnlyList<DayRange> merged)
    {
        var days = merged.Sum(r => (long)r.DayCount);
        var text = new StringBuilder("incremental (").Append(days.ToString(CultureInfo.InvariantCulture)).Append(days == 1 ? " day: " : " days: ");
        for (var i = 0; i < merged.Count && i < ListedRuns; i++)
        {
            text.Append(i == 0 ? string.Empty : ", ").Append(Compact(merged[i]));
        }

        if (merged.Count > ListedRuns)
        {
            var more = merged.Count - ListedRuns;
            text.Append(CultureInfo.InvariantCulture, $", … and {more} more run{(more == 1 ? string.Empty : "s")}");
        }

        return text.Append(')').ToString();
    }

    /// <summary><c>2026-03-01..03</c> within a month, <c>2026-04-30..05-01</c> within a year, else both days in full.</summary>
    public static string Compact(DayRange range)
    {
        var (first, last) = (range.First, range.Last);
        var end = first == last ? null
            : first.Year == last.Year && first.Month == last.Month ? last.ToString("dd", CultureInfo.InvariantCulture)
            : first.Year == last.Year ? last.ToString("MM-dd", CultureInfo.InvariantCulture)
            : DayRange.Format(last);
        return end is null ? DayRange.Format(first) : $"{DayRange.Format(first)}..{end}";
    }
}
