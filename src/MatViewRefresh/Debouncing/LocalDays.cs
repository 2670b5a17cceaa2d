namespace MatViewRefresh;

/// <summary>Local calendar days in IANA time zones.</summary>
internal static class LocalDays
{
    /// <summary>The local calendar day of <paramref name="instant"/> in <paramref name="timeZone"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="timeZone"/> is not a known time zone; the message names it.</exception>
    public static DateOnly Of(DateTimeOffset instant, string timeZone) =>
        DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(instant, FindZone(timeZone)).DateTime);

    /// <summary>Finds an IANA time zone, with an error that names a bad one.</summary>
    /// <exception cref="ArgumentException"><paramref name="timeZone"/> is not a known time zone.</exception>
    public static TimeZoneInfo FindZone(string timeZone)
    {
        if (string.IsNullOrWhiteSpace(timeZone))
        {
            throw new ArgumentException("A time zone is required (an IANA name such as 'America/Chicago').", nameof(timeZone));
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new ArgumentException($"'{timeZone}' is not a known IANA time zone (for example 'America/Chicago' or 'Europe/Paris').", nameof(timeZone), e);
        }
    }
}
