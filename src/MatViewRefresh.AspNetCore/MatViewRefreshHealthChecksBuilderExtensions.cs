using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.AspNetCore;

/// <summary>Registers the MatViewRefresh health check.</summary>
public static class MatViewRefreshHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check of the views' freshness, from the refresh log: Healthy when every view's data is at most
    /// <paramref name="maxAge"/> old; Degraded when one is older or was never refreshed; <paramref name="failureStatus"/>
    /// (Unhealthy by default) when one's last refresh failed or the database cannot be reached. The description names each
    /// view and its data's age. The check never throws.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="views">The materialized views (or window tables) to check, named as in SQL.</param>
    /// <param name="maxAge">How old a view's data may be before it is stale.</param>
    /// <param name="name">The check's name. The default is <c>matviewrefresh</c>.</param>
    /// <param name="failureStatus">The status of a failed refresh or an unreachable database. The default is <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">The check's tags.</param>
    /// <param name="timeout">The check's timeout. The default is none.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">A view name is not valid SQL, no view is listed, or <paramref name="maxAge"/> is not positive; the message names it.</exception>
    public static IHealthChecksBuilder AddMatViewRefresh(
        this IHealthChecksBuilder builder,
        IEnumerable<string> views,
        TimeSpan maxAge,
        string name = "matviewrefresh",
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(views);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var list = views.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("List at least one materialized view to check.", nameof(views));
        }

        foreach (var view in list)
        {
            if (!QualifiedName.TryParse(view, out _))
            {
                throw new ArgumentException($"'{view}' is not a valid materialized view name.", nameof(views));
            }
        }

        if (maxAge <= TimeSpan.Zero)
        {
            throw new ArgumentException($"maxAge must be positive; got {maxAge}.", nameof(maxAge));
        }

        return builder.Add(new HealthCheckRegistration(
            name,
            services => new MatViewRefreshHealthCheck(
                services.GetRequiredService<IRefreshLog>(),
                list,
                maxAge,
                services.GetRequiredService<ILogger<MatViewRefreshHealthCheck>>()),
            failureStatus ?? HealthStatus.Unhealthy,
            tags,
            timeout));
    }
}
