namespace MatViewRefresh;

/// <summary>
/// The days <c>[FromDay, ToDay)</c> of an incremental window refresh in a time zone, and the instants of their local
/// midnights (<c>[From, To)</c>): the last <c>days</c> local days, today included.
/// </summary>
internal readonly record struct LocalWindow(DateOnly FromDay, DateOnly ToDay, DateTimeOffset From, DateTimeOffset To)
{
    public static LocalWindow LastDays(DateTimeOffset now, int days, string timeZone)
    {
        var zone = LocalDays.FindZone(timeZone);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);
        var from = today.AddDays(1 - days);
        var to = today.AddDays(1);
        return new LocalWindow(from, to, Midnight(from, zone), Midnight(to, zone));
    }

    /// <summary>The instant the local day starts (where a DST change skips midnight, the first local time after the gap; where it repeats midnight, the first one).</summary>
    public static DateTimeOffset Midnight(DateOnly day, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local))
        {
            local = local.AddMinutes(15);
        }

        // A midnight that happens twice (a zone falling back from 01:00 to 00:00, such as Atlantic/Azores): the day starts
        // at the first of them, the one with the larger offset (ConvertTimeToUtc would take the later one).
        if (zone.IsAmbiguousTime(local))
        {
            var offset = zone.GetAmbiguousTimeOffsets(local).Max();
            return new DateTimeOffset(local, offset).ToUniversalTime();
        }

        return new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(local, zone), TimeSpan.Zero);
    }
}
