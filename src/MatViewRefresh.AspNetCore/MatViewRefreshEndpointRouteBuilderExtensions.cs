using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MatViewRefresh.AspNetCore;

/// <summary>Maps the MatViewRefresh endpoints.</summary>
public static class MatViewRefreshEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the refresh, status, automated-refresh, metrics and freshness routes (and the status page) under
    /// <paramref name="prefix"/>, and returns their route group, so the host adds authorization, rate limiting or OpenAPI to it:
    /// <c>POST /refresh</c>, <c>GET /refresh/status</c>, <c>POST /refresh/automated/start</c>, <c>/stop</c>, <c>/force</c>,
    /// <c>GET /refresh/automated/metrics</c>, <c>GET /freshness</c>, <c>GET /freshness/{view}</c> and <c>GET /dashboard</c>.
    /// </summary>
    /// <remarks>
    /// Never public by accident: the app fails to start unless the group (or a group around it) requires authorization
    /// (<c>.RequireAuthorization(...)</c>, before or after this call), an authorization fallback policy applies, or
    /// <see cref="MatViewRefreshEndpointOptions.AllowAnonymous"/> is set (then a warning is logged at start). When
    /// <paramref name="endpoints"/> is not the app itself (a route group), the check runs when the endpoints are first built.
    /// </remarks>
    /// <param name="endpoints">The app, or a route group.</param>
    /// <param name="prefix">The routes' prefix. The default is <c>/api/matviews</c>.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>The route group of every route mapped.</returns>
    /// <exception cref="ArgumentException">An option is invalid (a view name is not valid SQL, <see cref="MatViewRefreshEndpointOptions.StaleAfter"/> is not positive); the message names it.</exception>
    public static RouteGroupBuilder MapMatViewRefreshEndpoints(this IEndpointRouteBuilder endpoints, string prefix = "/api/matviews", Action<MatViewRefreshEndpointOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var options = new MatViewRefreshEndpointOptions();
        configure?.Invoke(options);
        if (options.StaleAfter <= TimeSpan.Zero)
        {
            throw new ArgumentException($"StaleAfter must be positive; got {options.StaleAfter}.", nameof(configure));
        }

        foreach (var view in options.Views)
        {
            if (!QualifiedName.TryParse(view, out _))
            {
                throw new ArgumentException($"Views: '{view}' is not a valid materialized view name.", nameof(configure));
            }
        }

        var group = endpoints.MapGroup(prefix);
        var handlers = new RefreshEndpoints(options);
        group.MapPost("/refresh", (Func<HttpContext, Task<IResult>>)handlers.RefreshAsync);
        group.MapGet("/refresh/status", (Func<HttpContext, Task<IResult>>)handlers.StatusAsync);
        group.MapPost("/refresh/automated/start", (Func<HttpContext, Task<IResult>>)handlers.StartAsync);
        group.MapPost("/refresh/automated/stop", (Func<HttpContext, Task<IResult>>)handlers.StopAsync);
        group.MapPost("/refresh/automated/force", (Func<HttpContext, Task<IResult>>)handlers.ForceAsync);
        group.MapGet("/refresh/automated/metrics", (Func<HttpContext, Task<IResult>>)handlers.MetricsAsync);
        group.MapGet("/freshness", (Func<HttpContext, Task<IResult>>)handlers.FreshnessAsync);
        group.MapGet("/freshness/{view}", (Func<HttpContext, string, Task<IResult>>)handlers.ViewFreshnessAsync);
        if (options.MapDashboard)
        {
            group.MapGet("/dashboard", (Func<HttpContext, IResult>)Dashboard.Serve).ExcludeFromDescription();
        }

        var guard = new AuthorizationGuard(prefix, options.AllowAnonymous);
        ((IEndpointConventionBuilder)group).Finally(guard.Check);
        if (endpoints is IApplicationBuilder app)
        {
            // Runs when the app builds its pipeline at start, after every Map and convention call: building the endpoints
            // there runs the guard, so an unprotected group stops the start instead of failing on the first request.
            app.Use(next =>
            {
                guard.CheckAtStart(endpoints);
                return next;
            });
        }

        return group;
    }
}
