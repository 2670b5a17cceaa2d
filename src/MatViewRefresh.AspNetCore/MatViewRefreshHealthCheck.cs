using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.AspNetCore;

/// <summary>
/// Healthy when every view is fresh; Degraded when one is stale (or never refreshed); Unhealthy (the registration's failure
/// status) when one's last refresh failed or the refresh log cannot be read. Never throws.
/// </summary>
internal sealed class MatViewRefreshHealthCheck(IRefreshLog log, IReadOnlyList<string> views, TimeSpan maxAge, ILogger<MatViewRefreshHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failureStatus = context.Registration.FailureStatus;
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var failed = new List<string>();
        var stale = new List<string>();
        var fresh = new List<string>();
        try
        {
            foreach (var view in views)
            {
                var f = await log.GetFreshnessAsync(RefreshTarget.View(view), cancellationToken).ConfigureAwait(false);
                data[view] = f?.Age is { } age ? Math.Round(age.TotalSeconds, 1) : "never refreshed";
                if (f is not null && f.LastError is not null && (f.RefreshedAt is null || f.LastAttemptAt > f.RefreshedAt))
                {
                    failed.Add($"{view}: last refresh failed at {UtcTimestampConverter.Format(f.LastAttemptAt)} ({f.LastError}); data {Age(f.Age)}");
                }
                else if (f is null || f.IsStale(maxAge))
                {
                    stale.Add(f?.Age is null ? $"{view}: never refreshed" : $"{view}: stale, data {Age(f.Age)} (max {Age(maxAge)})");
                }
                else
                {
                    fresh.Add($"{view}: data {Age(f.Age)}");
                }
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Log.HealthCheckDatabaseUnavailable(logger, e.Message, e);
            return new HealthCheckResult(failureStatus, "The refresh log could not be read: " + e.Message, e, data);
        }

        var description = string.Join("; ", failed.Concat(stale).Concat(fresh));
        return failed.Count > 0 ? new HealthCheckResult(failureStatus, description, data: data)
            : stale.Count > 0 ? HealthCheckResult.Degraded(description, data: data)
            : HealthCheckResult.Healthy(description, data);
    }

    private static string Age(TimeSpan? age) => age switch
    {
        null => "of unknown age",
        { TotalSeconds: < 120 } a => a.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s old",
        { TotalMinutes: < 120 } a => a.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture) + " min old",
        { } a => a.TotalHours.ToString("0.#", CultureInfo.InvariantCulture) + " h old",
    };
}
