using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;

namespace MatViewRefresh.AspNetCore;

/// <summary>Freshness of responses served from a materialized view (seed 002).</summary>
public static class CacheFreshnessHttpContextExtensions
{
    /// <summary>
    /// Reads the view's freshness from the refresh log (<see cref="IRefreshLog"/>), sets the response's <c>Last-Modified</c>
    /// to what its data reflects (<see cref="ViewFreshness.DataAsOf"/>), and returns the fields to add to the response.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <param name="view">The materialized view (or window table) the response is read from, named as in SQL.</param>
    /// <param name="cancellationToken">Cancels the query; the default is the request's.</param>
    /// <exception cref="ArgumentException"><paramref name="view"/> is not a valid name.</exception>
    public static async Task<CacheFreshness> GetCacheFreshnessAsync(this HttpContext context, string view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var target = RefreshTarget.View(view);
        var log = context.RequestServices.GetRequiredService<IRefreshLog>();
        var token = cancellationToken.CanBeCanceled ? cancellationToken : context.RequestAborted;
        var freshness = CacheFreshness.Cached(await log.GetFreshnessAsync(target, token).ConfigureAwait(false));
        if (freshness.DataAsOf is { } asOf)
        {
            context.Response.Headers[HeaderNames.LastModified] = asOf.ToUniversalTime().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        }

        return freshness;
    }
}
