using Microsoft.AspNetCore.Http;

namespace MatViewRefresh.AspNetCore;

/// <summary>The status page: one self-contained HTML file (inline CSS and JS) that reads the group's own JSON routes.</summary>
internal static class Dashboard
{
    private static readonly Lazy<byte[]> Page = new(() =>
    {
        using var stream = typeof(Dashboard).Assembly.GetManifestResourceStream("MatViewRefresh.AspNetCore.dashboard.html")
            ?? throw new InvalidOperationException("The dashboard resource is missing from MatViewRefresh.AspNetCore.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static IResult Serve(HttpContext context)
    {
        // Relative URLs in the page resolve against its own path: without a trailing slash, "freshness" is a sibling of "dashboard".
        context.Response.Headers.CacheControl = "no-store";
        // frame-ancestors: the page has buttons that refresh views, so no other site may frame it (clickjacking).
        context.Response.Headers["Content-Security-Policy"] =
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'";
        context.Response.Headers["X-Frame-Options"] = "DENY";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(Page.Value, "text/html; charset=utf-8");
    }
}
