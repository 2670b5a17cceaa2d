using System.Globalization;
using Cronos;

namespace MatViewRefresh;

/// <summary>A validated schedule: its parsed cron or interval, zone, active hours, mode and selection, and its ticks.</summary>
/// <remarks>
/// Ticks are nominal instants that every instance computes alike whatever its start time: cron occurrences (Cronos, DST
/// gaps and overlaps included) or an interval grid aligned to the Unix epoch. The tick, not the moment a timer fires,
/// is what instances claim in the database, so clocks a second apart still agree on it.
/// </remarks>
internal sealed class ScheduleDefinition
{
    private static readonly TimeSpan[] LookBacks = [TimeSpan.FromHours(1), TimeSpan.FromDays(1), TimeSpan.FromDays(32), TimeSpan.FromDays(367)];

    private ScheduleDefinition(string name, RefreshScheduleOptions options, CronExpression? cron, TimeZoneInfo zone, (TimeOnly Start, TimeOnly End)? activeHours, RefreshMode mode, RefreshSelection? selection)
    {
        Name = name;
        Options = options;
        CronExpression = cron;
        Zone = zone;
        ActiveHours = activeHours;
        Mode = mode;
        Selection = selection;
    }

    public string Name { get; }

    public RefreshScheduleOptions Options { get; }

    public CronExpression? CronExpression { get; }

    public TimeSpan? Interval => CronExpression is null ? Options.Interval : null;

    public TimeZoneInfo Zone { get; }

    public (TimeOnly Start, TimeOnly End)? ActiveHours { get; }

    public RefreshMode Mode { get; }

    /// <summary>The views to refresh, or null when the schedule only has window targets.</summary>
    public RefreshSelection? Selection { get; }

    /// <summary>The window targets, in order.</summary>
    public IReadOnlyList<RefreshTarget> Windows { get; private init; } = [];

    public WindowStrategy Strategy { get; private init; }

    /// <summary>The view and column whose newest value is the data's freshness, or null.</summary>
    public (QualifiedName View, string Column)? DataTimestamp { get; private init; }

    /// <summary>Parses and checks a schedule; adds one message per bad setting (naming the schedule and the field) and returns null if any.</summary>
    public static ScheduleDefinition? Create(string name, RefreshScheduleOptions? o, List<string> failures)
    {
        var p = $"{MatViewRefreshOptions.SectionName}:Schedules:{name}";
        if (string.IsNullOrWhiteSpace(name))
        {
            failures.Add($"{MatViewRefreshOptions.SectionName}:Schedules has a schedule without a name.");
            return null;
        }

        if (o is null)
        {
            failures.Add($"{p} is null.");
            return null;
        }

        var before = failures.Count;
        CronExpression? cron = null;
        if (o.Interval is null == string.IsNullOrWhiteSpace(o.Cron))
        {
            failures.Add($"{p}: set exactly one of Interval and Cron (Interval is {Show(o.Interval)}, Cron is {Show(o.Cron)}).");
        }
        else if (o.Interval is { } interval && (interval < TimeSpan.FromSeconds(1) || interval > TimeSpan.FromDays(366)))
        {
            failures.Add($"{p}:Interval is {interval}; it must be between 00:00:01 and 366.00:00:00.");
        }
        else if (!string.IsNullOrWhiteSpace(o.Cron))
        {
            try
            {
                cron = Cronos.CronExpression.Parse(o.Cron, CronFormat.Standard);
            }
            catch (CronFormatException e)
            {
                failures.Add($"{p}:Cron is '{o.Cron}': {e.Message} (5 fields: minute hour day-of-month month day-of-week).");
            }
        }

        TimeZoneInfo zone = TimeZoneInfo.Utc;
        try
        {
            zone = LocalDays.FindZone(o.TimeZone);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{p}:TimeZone is '{o.TimeZone}': {e.Message.Split(" (Parameter", 2)[0]}");
        }

        (TimeOnly, TimeOnly)? active = null;
        if (!string.IsNullOrWhiteSpace(o.ActiveHours))
        {
            var parts = o.ActiveHours.Split('-', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && ParseHourMinute(parts[0]) is { } start && ParseHourMinute(parts[1]) is { } end && start != end)
            {
                active = (start, end);
            }
            else
            {
                failures.Add($"{p}:ActiveHours is '{o.ActiveHours}': write local start and end as HH:mm-HH:mm (06:00-22:00; 22:00-06:00 spans midnight), start and end different.");
            }
        }

        var interval2 = o.Interval ?? TimeSpan.Zero;
        if (o.Jitter < TimeSpan.Zero || (o.Interval is not null && o.Jitter >= interval2 && interval2 > TimeSpan.Zero) || o.Jitter > TimeSpan.FromHours(1))
        {
            failures.Add($"{p}:Jitter is {o.Jitter}; it must be zero or positive, shorter than the interval and at most 01:00:00.");
        }

        if (o.MaxCatchUpRuns is < 0 or > 1)
        {
            failures.Add($"{p}:MaxCatchUpRuns is {o.MaxCatchUpRuns}; it must be 0 or 1.");
        }

        if (o.StopTimeout < TimeSpan.Zero || o.StopTimeout > TimeSpan.FromDays(1))
        {
            failures.Add($"{p}:StopTimeout is {o.StopTimeout}; it must be between 00:00:00 and 1.00:00:00.");
        }

        if (o.RunLease < TimeSpan.FromSeconds(1) || o.RunLease > TimeSpan.FromDays(1))
        {
            failures.Add($"{p}:RunLease is {o.RunLease}; it must be between 00:00:01 and 1.00:00:00.");
        }

        var mode = RefreshMode.Auto;
        if (!Enum.TryParse(o.Mode, ignoreCase: true, out mode) || !Enum.IsDefined(mode) || int.TryParse(o.Mode, out _))
        {
            failures.Add($"{p}:Mode is '{o.Mode}': use Auto, Full or Concurrent (the views' mode; window tables take Strategy: Smart, Incremental or Full).");
        }

        var strategy = WindowStrategy.Smart;
        if (!Enum.TryParse(o.Strategy, ignoreCase: true, out strategy) || !Enum.IsDefined(strategy) || int.TryParse(o.Strategy, out _))
        {
            failures.Add($"{p}:Strategy is '{o.Strategy}': use Smart, Incremental or Full (the strategy of the schedule's Windows).");
        }

        if (o.Days is < 1 or > 36_600)
        {
            failures.Add($"{p}:Days is {o.Days}; it must be between 1 and 36600.");
        }

        if (o.FullRefreshAfter <= TimeSpan.Zero)
        {
            failures.Add($"{p}:FullRefreshAfter is {o.FullRefreshAfter}; it must be positive.");
        }

        var windows = new List<RefreshTarget>();
        var windowOptions = o.Windows ?? [];
        for (var i = 0; i < windowOptions.Count; i++)
        {
            var w = windowOptions[i];
            try
            {
                if (w is null)
                {
                    throw new ArgumentException("is null.");
                }

                var target = RefreshTarget.Window(w.Table, w.DateColumn, w.Query);
                if (windows.Contains(target))
                {
                    throw new ArgumentException($"table {target} is given twice.");
                }

                windows.Add(target);
            }
            catch (ArgumentException e)
            {
                failures.Add($"{p}:Windows:{i}: {e.Message.Split(" (Parameter", 2)[0]}");
            }
        }

        RefreshSelection? selection = null;
        var views = o.Views ?? [];
        var schemas = o.Schemas ?? [];
        if (views.Count == 0 && schemas.Count == 0)
        {
            if (windowOptions.Count == 0)
            {
                failures.Add($"{p}: select something to refresh (Views, Schemas or Windows).");
            }
        }
        else if (views.Count > 0 && schemas.Count > 0)
        {
            failures.Add($"{p}: set Views or Schemas, not both (make two schedules).");
        }
        else
        {
            try
            {
                selection = views.Count > 0 ? RefreshSelection.Views(views) : RefreshSelection.Schemas(schemas);
                selection = selection with { IncludeDependents = o.IncludeDependents };
            }
            catch (ArgumentException e)
            {
                failures.Add($"{p}:{(views.Count > 0 ? "Views" : "Schemas")}: {e.Message.Split(" (Parameter", 2)[0]}");
            }
        }

        (QualifiedName View, string Column)? data = null;
        if (!string.IsNullOrWhiteSpace(o.DataTimestampColumn))
        {
            try
            {
                var text = o.DataTimestampColumn.Trim();
                var dot = text.LastIndexOf('.');
                var implied = true;
                var view = dot > 0 ? QualifiedName.Parse(text[..dot], "public", out implied) : null;
                if (view is null || implied)
                {
                    throw new ArgumentException("write schema.view.column.");
                }

                data = (view, QualifiedName.ParseIdentifier(text[(dot + 1)..], nameof(o.DataTimestampColumn)));
            }
            catch (ArgumentException e)
            {
                failures.Add($"{p}:DataTimestampColumn is '{o.DataTimestampColumn}': {e.Message.Split(" (Parameter", 2)[0]}");
            }
        }

        if (failures.Count != before)
        {
            return null;
        }

        var definition = new ScheduleDefinition(name, o, cron, zone, active, mode, selection) { DataTimestamp = data, Windows = windows, Strategy = strategy };

        // A schedule that would never fire (a cron for 30 February, a cron entirely outside its active hours) is an error,
        // not a scheduler that says it started. And a jitter as long as the gap between two occurrences would swallow ticks.
        var from = DateTimeOffset.UnixEpoch.AddYears(56); // a fixed instant: validation does not depend on today
        var occurrences = new List<DateTimeOffset>();
        for (var t = definition.NextTick(from); t is { } tick && occurrences.Count < 16; t = definition.NextTick(tick))
        {
            occurrences.Add(tick);
        }

        if (occurrences.Count == 0)
        {
            failures.Add($"{p}: it never fires ({(cron is null ? $"Interval {o.Interval}" : $"Cron '{o.Cron}'")}{(active is null ? string.Empty : $" within ActiveHours {o.ActiveHours}")} has no occurrence).");
            return null;
        }

        if (cron is not null && o.Jitter > TimeSpan.Zero && occurrences.Count > 1)
        {
            var shortest = occurrences.Zip(occurrences.Skip(1), (a, b) => b - a).Min();
            if (o.Jitter >= shortest)
            {
                failures.Add($"{p}:Jitter is {o.Jitter}; it must be shorter than the shortest gap between two occurrences of Cron '{o.Cron}' ({shortest}).");
                return null;
            }
        }

        return definition;
    }

    /// <summary>The first tick strictly after <paramref name="after"/> within the active hours; null if there is none (a cron for 30 February).</summary>
    public DateTimeOffset? NextTick(DateTimeOffset after)
    {
        var candidate = RawNext(after, inclusive: false);
        for (var i = 0; i < 8 && candidate is { } c; i++)
        {
            if (IsActive(c))
            {
                return c;
            }

            candidate = RawNext(NextActiveStart(c), inclusive: true);
        }

        return null;
    }

    /// <summary>The last tick at or before <paramref name="atOrBefore"/> within the active hours (looking back up to a year), or null.</summary>
    public DateTimeOffset? PreviousTick(DateTimeOffset atOrBefore)
    {
        if (Interval is { } interval)
        {
            var t = Grid(atOrBefore, interval, roundUp: false);
            for (var i = 0; i < 100_000 && t > atOrBefore - TimeSpan.FromDays(367); i++, t -= interval)
            {
                if (IsActive(t))
                {
                    return t;
                }
            }

            return null;
        }

        foreach (var back in LookBacks)
        {
            DateTimeOffset? last = null;
            foreach (var o in CronExpression!.GetOccurrences(atOrBefore - back, atOrBefore, Zone, fromInclusive: true, toInclusive: true))
            {
                if (IsActive(o))
                {
                    last = o;
                }
            }

            if (last is not null)
            {
                return last;
            }
        }

        return null;
    }

    public bool IsActive(DateTimeOffset instant)
    {
        if (ActiveHours is not { } window)
        {
            return true;
        }

        var local = TimeOnly.FromTimeSpan(TimeZoneInfo.ConvertTime(instant, Zone).TimeOfDay);
        return window.Start < window.End
            ? local >= window.Start && local < window.End
            : local >= window.Start || local < window.End;
    }

    /// <summary><paramref name="instant"/> in the schedule's zone.</summary>
    public DateTimeOffset InZone(DateTimeOffset instant) => TimeZoneInfo.ConvertTime(instant, Zone);

    private DateTimeOffset? RawNext(DateTimeOffset from, bool inclusive)
    {
        if (Interval is { } interval)
        {
            var t = Grid(from, interval, roundUp: true);
            return !inclusive && t == from ? t + interval : t;
        }

        return CronExpression!.GetNextOccurrence(from, Zone, inclusive);
    }

    /// <summary>The next instant after <paramref name="instant"/> at which the active hours start.</summary>
    private DateTimeOffset NextActiveStart(DateTimeOffset instant)
    {
        var start = ActiveHours!.Value.Start;
        var local = TimeZoneInfo.ConvertTime(instant, Zone);
        for (var day = 0; day < 3; day++)
        {
            var wall = local.Date.AddDays(day) + start.ToTimeSpan();
            while (Zone.IsInvalidTime(wall))
            {
                wall = wall.AddMinutes(30); // the start falls in a spring-forward gap: the first valid time after it
            }

            var offset = Zone.IsAmbiguousTime(wall) ? Zone.GetAmbiguousTimeOffsets(wall).Max() : Zone.GetUtcOffset(wall);
            var candidate = new DateTimeOffset(wall, offset);
            if (candidate > instant)
            {
                return candidate.ToUniversalTime();
            }
        }

        return instant.AddDays(1);
    }

    private static DateTimeOffset Grid(DateTimeOffset instant, TimeSpan interval, bool roundUp)
    {
        var ticks = instant.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var k = Math.DivRem(ticks, interval.Ticks, out var rest);
        if (rest < 0)
        {
            k--;
            rest += interval.Ticks;
        }

        if (roundUp && rest > 0)
        {
            k++;
        }

        return new DateTimeOffset(DateTimeOffset.UnixEpoch.UtcTicks + (k * interval.Ticks), TimeSpan.Zero);
    }

    private static TimeOnly? ParseHourMinute(string text) =>
        text == "24:00" ? TimeOnly.MinValue
        : TimeOnly.TryParseExact(text, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t : null;

    private static string Show(object? value) => value is null ? "not set" : $"'{value}'";
}
