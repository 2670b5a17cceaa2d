using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MatViewRefresh.AspNetCore;

/// <summary>Refuses to build the group's endpoints when nothing protects them and the host did not opt into anonymous access.</summary>
internal sealed class AuthorizationGuard(string prefix, bool allowAnonymous)
{
    private int _warned;

    /// <summary>A <c>Finally</c> convention: it sees the metadata of every convention, the host's included, whenever they were added.</summary>
    public void Check(EndpointBuilder endpoint)
    {
        if (allowAnonymous)
        {
            // Also here, not only in CheckAtStart (which runs only when mapped on the app itself, not on a route group).
            WarnOnce(endpoint.ApplicationServices);
            return;
        }

        if (IsProtected(endpoint))
        {
            return;
        }

        throw new InvalidOperationException(
            $"The MatViewRefresh endpoints under '{prefix}' ({endpoint.DisplayName}) would be public: anyone could refresh views and stop the scheduler. " +
            $"Call .RequireAuthorization(...) on the route group MapMatViewRefreshEndpoints returns, " +
            $"or set AllowAnonymous = true in its options to serve them without authorization on purpose.");
    }

    /// <summary>Builds every endpoint (running <see cref="Check"/>) and logs the anonymous-access warning once.</summary>
    public void CheckAtStart(IEndpointRouteBuilder endpoints)
    {
        foreach (var source in endpoints.DataSources)
        {
            _ = source.Endpoints;
        }

        if (allowAnonymous)
        {
            WarnOnce(endpoints.ServiceProvider);
        }
    }

    private void WarnOnce(IServiceProvider services)
    {
        if (Interlocked.Exchange(ref _warned, 1) == 0)
        {
            var logger = services.GetService<ILoggerFactory>()?.CreateLogger("MatViewRefresh.AspNetCore") ?? NullLogger.Instance;
            Log.EndpointsAllowAnonymous(logger, prefix);
        }
    }

    /// <summary>Authorization metadata or a fallback policy, and no <see cref="IAllowAnonymous"/> (which would override both).</summary>
    private static bool IsProtected(EndpointBuilder endpoint) =>
        !endpoint.Metadata.Any(m => m is IAllowAnonymous)
        && (endpoint.Metadata.Any(m => m is IAuthorizeData or AuthorizationPolicy)
            || endpoint.ApplicationServices.GetService<IOptions<AuthorizationOptions>>()?.Value.FallbackPolicy is not null);
}
