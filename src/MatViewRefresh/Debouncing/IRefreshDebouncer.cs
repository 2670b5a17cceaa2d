namespace MatViewRefresh;

/// <summary>
/// Refresh-on-ingest: after data for one key (a user, a user-day) is committed, request a refresh; it runs a
/// moment later, bursts coalesce into one run, and no committed batch is left unreflected.
/// </summary>
/// <remarks>
/// Per key: the first request schedules a run after a settle delay; further requests before the run starts join
/// it and push it back (never past <see cref="RefreshDebounceOptions.MaxWait"/> after the first one); a request
/// that arrives while the key's run is in progress causes exactly one more run after it; runs of a key start at
/// least <see cref="RefreshDebounceOptions.MinInterval"/> apart. Callers never wait for a run and never see its
/// failure; failed runs are retried with backoff. Across processes the refresher's advisory lock keeps one run per
/// target at a time: a run that finds its target busy elsewhere is coalesced and runs again after it.
/// </remarks>
public interface IRefreshDebouncer
{
    /// <summary>Requests a debounced refresh of <paramref name="target"/>; returns at once.</summary>
    /// <param name="target">What to refresh, usually a function target scoped to one user and day.</param>
    /// <param name="key">The coalescing key; requests with the same key share runs. The default is the target itself (name and scope).</param>
    /// <returns>The ticket: key, when the run is scheduled, whether the request joined a pending run, and the run's result task.</returns>
    RefreshTicket Request(RefreshTarget target, string? key = null);

    /// <summary>The local calendar day of <paramref name="instant"/> in an IANA time zone (DST handled by the zone rules).</summary>
    /// <param name="instant">The instant.</param>
    /// <param name="timeZone">An IANA zone such as <c>Europe/Paris</c>; the default is <see cref="RefreshDebounceOptions.DefaultTimeZone"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="timeZone"/> is not a known time zone; the message names it.</exception>
    DateOnly LocalDay(DateTimeOffset instant, string? timeZone = null);
}
