using Microsoft.AspNetCore.Http;

namespace MatViewRefresh.AspNetCore;

/// <summary>Settings of the route group mapped by <see cref="MatViewRefreshEndpointRouteBuilderExtensions.MapMatViewRefreshEndpoints"/>.</summary>
public sealed class MatViewRefreshEndpointOptions
{
    /// <summary>
    /// Serve the routes without authorization. Without it, the app fails to start unless the group (or a group around it)
    /// requires authorization, or an authorization fallback policy applies; with it, a warning is logged at start.
    /// <value>The default is <see langword="false"/>.</value>
    /// </summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>
    /// The materialized views <c>POST /refresh</c> refreshes when the request lists none, and <c>GET /freshness</c> and the
    /// status page report, named as in SQL (<c>sales.daily_totals</c>).
    /// <value>The default is empty: the views (and schemas) of the configured schedules, and their window targets in reports.</value>
    /// </summary>
    public IList<string> Views { get; set; } = [];

    /// <summary>
    /// Data older than this is reported stale (<c>stale: true</c>, red on the status page).
    /// <value>The default is 1 hour.</value>
    /// </summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Map <c>GET /dashboard</c>, the status page. <value>The default is <see langword="true"/>.</value></summary>
    public bool MapDashboard { get; set; } = true;

    /// <summary>
    /// Host-supplied fields added to the top level of <c>GET /refresh/status</c>, next to the package's own (which win on a
    /// name clash): what only the app knows, such as seed 003's <c>cache_metrics</c> of its own caches. Called once per
    /// request; the values are serialized as JSON. <value>The default is <see langword="null"/>: no extra fields.</value>
    /// </summary>
    /// <example><code>o.StatusFields = (context, ct) => Task.FromResult&lt;IReadOnlyDictionary&lt;string, object?&gt;&gt;(
    ///     new Dictionary&lt;string, object?&gt; { ["cache_metrics"] = myCaches.Snapshot() });</code></example>
    public Func<HttpContext, CancellationToken, Task<IReadOnlyDictionary<string, object?>>>? StatusFields { get; set; }
}
