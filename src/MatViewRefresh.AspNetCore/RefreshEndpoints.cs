using System.Data.Common;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MatViewRefresh.AspNetCore;

/// <summary>The handlers of the route group: thin mappings onto the core's refresher, scheduler and refresh log.</summary>
internal sealed class RefreshEndpoints(MatViewRefreshEndpointOptions options)
{
    private const string NotRunning = "Automated refresh service is not running";

    public Task<IResult> RefreshAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var query = context.Request.Query;
        var mode = ParseMode(query["mode"]);
        if (mode.Error is { } modeError)
        {
            return modeError;
        }

        IReadOnlyList<QualifiedName> views;
        if (query.TryGetValue("views", out var listed))
        {
            var parsed = ParseNames(services, "views", listed.ToString());
            if (parsed.Error is { } namesError)
            {
                return namesError;
            }

            views = parsed.Names;
        }
        else
        {
            views = (await ConfiguredAsync(services, ct)).Views;
            if (views.Count == 0)
            {
                return BadValue("views", null, "is required: no views are configured (MatViewRefreshEndpointOptions.Views or MatViewRefresh:Schedules); list them as ?views=a,b");
            }
        }

        RefreshBatchResult batch;
        try
        {
            batch = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshManyAsync(
                RefreshSelection.Views(views.Select(RefreshTarget.View)),
                new RefreshOptions { Mode = mode.Value, Trigger = "api" },
                ct);
        }
        catch (MaterializedViewNotFoundException e)
        {
            return UnknownView(e, DefaultSchema(services));
        }

        var defaultSchema = DefaultSchema(services);
        var (results, details) = ResultsOf(batch.Results, defaultSchema);
        var status = Status(batch.Status);
        var body = new RefreshBody(status, MessageOf(batch, defaultSchema), results, details, Json.Ms(batch.Duration))
        {
            FailedViews = batch.Status == RefreshBatchStatus.PartialSuccess
                ? [.. batch.FailedViews.Concat(batch.SkippedViews).Select(v => Json.Name(v.ToString(), defaultSchema))]
                : null,
            // Seed 003's error answer is {"detail": …}: an all-failed 500 carries one too, naming the views and their errors.
            Detail = batch.Error?.Message ?? (batch.Status == RefreshBatchStatus.Failed ? FailureDetail(batch.Results, defaultSchema) : null),
        };
        return Results.Json(body, Json.Options, statusCode: batch.Status switch
        {
            RefreshBatchStatus.Failed when batch.Error is not null => StatusCodes.Status503ServiceUnavailable,
            RefreshBatchStatus.Failed => StatusCodes.Status500InternalServerError,
            _ => StatusCodes.Status200OK,
        });
    });

    public Task<IResult> StatusAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var freshness = await FreshnessOfAsync(services, ct);
        var lastRefresh = freshness.Select(f => f.Freshness?.RefreshedAt).Max();
        var scheduler = services.GetRequiredService<IRefreshScheduler>();
        var automated = AutomatedStatus(scheduler);
        var message = automated.Enabled
            ? "Materialized view refresh service is operational; automated refresh is running"
            : "Materialized view refresh service is operational; automated refresh is stopped";
        var body = new StatusBody("available", Json.Unix(lastRefresh), lastRefresh, automated, message);
        if (options.StatusFields is { } fields && await fields(context, ct) is { Count: > 0 } extra)
        {
            string[] own = ["status", "last_refresh", "last_refresh_at", "automated_refresh_status", "message"];
            body = body with { Extra = extra.Where(f => !own.Contains(f.Key, StringComparer.Ordinal)).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal) };
        }

        return Results.Json(body, Json.Options);
    });

    public Task<IResult> StartAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var scheduler = services.GetRequiredService<IRefreshScheduler>();
        var core = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;
        if (core.Schedules.Count == 0)
        {
            return Conflict("No refresh schedule is configured (MatViewRefresh:Schedules): there is nothing to start");
        }

        var wasRunning = scheduler.IsStarted;
        if (!wasRunning)
        {
            await scheduler.StartAsync(ct);
        }

        var message = wasRunning ? "Automated refresh service is already running" : "Automated refresh service started successfully";
        return Results.Json(new StartBody("success", message, Config(core)), Json.Options);
    });

    public Task<IResult> StopAsync(HttpContext context) => GuardAsync(context, async (services, _) =>
    {
        var scheduler = services.GetRequiredService<IRefreshScheduler>();
        if (!scheduler.IsStarted)
        {
            return Conflict(NotRunning);
        }

        // Not the request's token: a client going away must not cancel the run the stop waits for.
        var metrics = await scheduler.StopAsync(CancellationToken.None);
        var final = new FinalMetricsBody(
            metrics.TotalRuns,
            metrics.Succeeded,
            metrics.Failed,
            metrics.SkippedTicks,
            Json.Ms(metrics.AverageDuration),
            Math.Round(metrics.Uptime.TotalSeconds, 3));
        return Results.Json(new StopBody("success", "Automated refresh service stopped successfully", final), Json.Options);
    });

    public Task<IResult> ForceAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var scheduler = services.GetRequiredService<IRefreshScheduler>();
        if (!scheduler.IsStarted)
        {
            return Conflict(NotRunning);
        }

        var started = services.GetRequiredService<TimeProvider>().GetTimestamp();
        var runs = await scheduler.ForceAsync(null, ct);
        var duration = services.GetRequiredService<TimeProvider>().GetElapsedTime(started);
        if (runs.Count > 0 && runs.All(r => r.Outcome == RefreshScheduleOutcome.Skipped))
        {
            return Conflict("A scheduled refresh is already running: " + string.Join("; ", runs.Select(r => $"{r.Schedule}: {r.Error}")));
        }

        var all = runs.SelectMany(r => (r.Batch?.Results ?? []).Concat(r.Windows)).ToList();
        var (results, details) = ResultsOf(all, DefaultSchema(services));
        var success = runs.All(r => r.Outcome == RefreshScheduleOutcome.Succeeded);
        var anyGood = runs.Any(r => r.Outcome is RefreshScheduleOutcome.Succeeded or RefreshScheduleOutcome.PartiallySucceeded);
        var status = success ? "success" : anyGood ? "partial_success" : "failed";
        var message = success
            ? "Forced refresh completed successfully"
            : "Forced refresh did not fully succeed: " + string.Join("; ", runs.Where(r => r.Error is not null).Select(r => $"{r.Schedule}: {r.Error}"));
        var result = new ForceResultBody(Json.Ms(duration), results.Values.Count(ok => ok), success, results, details);
        return Results.Json(
            new ForceBody(status, result, message) { Detail = anyGood ? null : message + " (" + FailureDetail(all, DefaultSchema(services)) + ")" },
            Json.Options,
            statusCode: anyGood ? StatusCodes.Status200OK : StatusCodes.Status500InternalServerError);
    });

    public Task<IResult> MetricsAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var query = context.Request.Query;
        var limit = 100;
        if (query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            return BadValue("limit", limitText.ToString(), "must be a whole number from 1 to 10000");
        }

        DateTimeOffset? since = null;
        if (query.TryGetValue("since", out var sinceText))
        {
            since = ParseInstant(sinceText.ToString());
            if (since is null)
            {
                return BadValue("since", sinceText.ToString(), "must be a Unix timestamp in seconds (1731000000 or 1731000000.5) or an ISO 8601 instant (2025-11-07T10:30:00Z)");
            }
        }

        RefreshTarget? target = null;
        if (query.TryGetValue("view_name", out var viewText))
        {
            var known = await KnownTargetAsync(services, "view_name", viewText.ToString(), ct);
            if (known.Error is { } error)
            {
                return error;
            }

            target = known.Target;
        }

        var log = services.GetRequiredService<IRefreshLog>();
        var history = await log.GetHistoryAsync(limit, target, since, ct);
        var summary = await log.GetSummaryAsync(target, since, ct);
        var defaultSchema = DefaultSchema(services);
        var metrics = history.Select(h => new MetricBody(
            h.Id, Json.Name(h.Target, defaultSchema), h.Scope, Json.Ms(h.Duration), h.Success, h.StartedAt, h.ErrorMessage, h.ErrorSqlState, h.Mode, h.Trigger, h.Attempts, h.DataAsOf)).ToList();
        var summaryBody = new SummaryBody(
            summary.Count,
            summary.Successes,
            summary.Failures,
            summary.SuccessRate is { } rate ? Math.Round(rate, 3) : null,
            Json.Ms(summary.Average),
            Json.Ms(summary.P50),
            Json.Ms(summary.P95),
            Json.Ms(summary.P99),
            Json.Ms(summary.Min),
            Json.Ms(summary.Max));
        return Results.Json(new MetricsBody("success", metrics, summaryBody), Json.Options);
    });

    public Task<IResult> FreshnessAsync(HttpContext context) => GuardAsync(context, async (services, ct) =>
    {
        var rows = await FreshnessOfAsync(services, ct);
        return Results.Json(
            new FreshnessListBody(options.StaleAfter.TotalSeconds, [.. rows.Select(r => Body(r.Target, r.Freshness, DefaultSchema(services)))]),
            Json.Options);
    });

    public Task<IResult> ViewFreshnessAsync(HttpContext context, string view) => GuardAsync(context, async (services, ct) =>
    {
        var known = await KnownTargetAsync(services, "view", view, ct);
        if (known.Error is { } error)
        {
            return error;
        }

        var freshness = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(known.Target!, ct);
        return Results.Json(Body(known.Target!, freshness, DefaultSchema(services)), Json.Options);
    });

    // ---- helpers ----

    /// <summary>Answers 503 (problem details) when the database cannot be reached, instead of a bare 500.</summary>
    private static async Task<IResult> GuardAsync(HttpContext context, Func<IServiceProvider, CancellationToken, Task<IResult>> handler)
    {
        try
        {
            return await handler(context.RequestServices, context.RequestAborted);
        }
        catch (Exception e) when (e is DbException or TimeoutException && !context.RequestAborted.IsCancellationRequested)
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("MatViewRefresh.AspNetCore");
            Log.EndpointDatabaseUnavailable(logger, context.Request.Method, context.Request.Path, e.Message, e);
            return Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Database unavailable", detail: e.Message);
        }
    }

    /// <summary>The views <c>POST /refresh</c> refreshes by default, and the window targets reports also show.</summary>
    private async Task<(IReadOnlyList<QualifiedName> Views, IReadOnlyList<RefreshTarget> Windows)> ConfiguredAsync(IServiceProvider services, CancellationToken ct)
    {
        var core = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;
        var windows = core.Schedules.OrderBy(s => s.Key, StringComparer.OrdinalIgnoreCase)
            .SelectMany(s => s.Value.Windows)
            .Select(w => RefreshTarget.Window(w.Table, w.DateColumn, w.Query))
            .Distinct()
            .ToList();
        if (options.Views.Count > 0)
        {
            return ([.. options.Views.Select(v => QualifiedName.Parse(v, core.DefaultSchema)).Distinct()], windows);
        }

        var views = new List<QualifiedName>();
        foreach (var (_, schedule) in core.Schedules.OrderBy(s => s.Key, StringComparer.OrdinalIgnoreCase))
        {
            views.AddRange(schedule.Views.Select(v => QualifiedName.Parse(v, core.DefaultSchema)));
            if (schedule.Schemas.Count > 0)
            {
                var plan = await services.GetRequiredService<IMaterializedViewRefresher>().PlanAsync(RefreshSelection.Schemas(schedule.Schemas), cancellationToken: ct);
                views.AddRange(plan.Views);
            }
        }

        return ([.. views.Distinct()], windows);
    }

    private async Task<IReadOnlyList<(RefreshTarget Target, ViewFreshness? Freshness)>> FreshnessOfAsync(IServiceProvider services, CancellationToken ct)
    {
        var (views, windows) = await ConfiguredAsync(services, ct);
        var log = services.GetRequiredService<IRefreshLog>();
        var rows = new List<(RefreshTarget, ViewFreshness?)>();
        foreach (var target in views.Select(RefreshTarget.View).Concat(windows))
        {
            rows.Add((target, await log.GetFreshnessAsync(target, ct)));
        }

        return rows;
    }

    /// <summary>A name from the request that is a configured window target or an existing materialized view; otherwise 400 or 404.</summary>
    private async Task<(RefreshTarget? Target, IResult? Error)> KnownTargetAsync(IServiceProvider services, string parameter, string text, CancellationToken ct)
    {
        var core = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;
        if (!QualifiedName.TryParse(text, out var name, core.DefaultSchema))
        {
            return (null, BadValue(parameter, text, "is not a valid materialized view name"));
        }

        var (_, windows) = await ConfiguredAsync(services, ct);
        if (windows.FirstOrDefault(w => w.Name == name) is { } window)
        {
            return (window, null);
        }

        try
        {
            await services.GetRequiredService<IMaterializedViewRefresher>().PlanAsync(RefreshSelection.Views(RefreshTarget.View(name)), cancellationToken: ct);
            return (RefreshTarget.View(name), null);
        }
        catch (MaterializedViewNotFoundException e)
        {
            return (null, UnknownView(e, core.DefaultSchema));
        }
    }

    private static (IReadOnlyList<QualifiedName> Names, IResult? Error) ParseNames(IServiceProvider services, string parameter, string text)
    {
        var core = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;
        var names = new List<QualifiedName>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!QualifiedName.TryParse(part, out var name, core.DefaultSchema))
            {
                return ([], BadValue(parameter, part, "is not a valid materialized view name"));
            }

            names.Add(name);
        }

        return ([.. names.Distinct()], null);
    }

    private static (RefreshMode? Value, IResult? Error) ParseMode(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return (null, null);
        }

        return text.ToUpperInvariant() switch
        {
            "AUTO" => (RefreshMode.Auto, null),
            "FULL" => (RefreshMode.Full, null),
            "CONCURRENT" or "CONCURRENTLY" => (RefreshMode.Concurrent, null),
            _ => (null, BadValue("mode", text, "must be auto, full or concurrent")),
        };
    }

    /// <summary>Seconds since the Unix epoch (as seed 003's <c>since</c>) or an ISO 8601 instant (UTC unless it says otherwise).</summary>
    internal static DateTimeOffset? ParseInstant(string text)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return double.IsFinite(seconds) && Math.Abs(seconds) < 253_402_300_799
                ? DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond))
                : null;
        }

        // An unencoded '+' of an offset arrives as a space.
        text = text.Replace(' ', '+');
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant)
            && (text.Contains('T', StringComparison.Ordinal) || text.Length == 10)
            ? instant
            : null;
    }

    private static string DefaultSchema(IServiceProvider services) =>
        services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value.DefaultSchema;

    /// <summary>Seed 003's <c>results</c> (view → succeeded) and the <c>details</c> of each view's result, keyed alike.</summary>
    private static (Dictionary<string, bool> Results, Dictionary<string, ViewResultBody> Details) ResultsOf(IEnumerable<RefreshResult> results, string defaultSchema)
    {
        var succeeded = new Dictionary<string, bool>(StringComparer.Ordinal);
        var map = new Dictionary<string, ViewResultBody>(StringComparer.Ordinal);
        foreach (var r in results)
        {
            var key = Json.Name(r.Target.ToString(), defaultSchema);
            succeeded[key] = r.Success || r.Coalesced;
            map[key] = new ViewResultBody(
                r.Success || r.Coalesced,
                Json.Snake(r.Outcome.ToString()),
                Json.Snake(r.RequestedMode.ToString()),
                r.ModeUsed is { } used ? Json.Snake(used.ToString()) : null,
                r.ModeReason,
                Json.Ms(r.Duration),
                r.Attempts,
                r.DataAsOf,
                r.RefreshedAt,
                r.Error?.Message,
                r.Error?.SqlState);
        }

        return (succeeded, map);
    }

    private static string FailureDetail(IEnumerable<RefreshResult> results, string defaultSchema)
    {
        var failed = results.Where(r => !r.Success && !r.Coalesced)
            .Select(r => $"{Json.Name(r.Target.ToString(), defaultSchema)}: {r.Error?.Message ?? Json.Snake(r.Outcome.ToString())}")
            .ToList();
        return failed.Count == 0 ? "No materialized view was refreshed" : "Refresh failed: " + string.Join("; ", failed);
    }

    private static string Status(RefreshBatchStatus status) => status switch
    {
        RefreshBatchStatus.Success => "success",
        RefreshBatchStatus.PartialSuccess => "partial_success",
        _ => "failed",
    };

    private static string MessageOf(RefreshBatchResult batch, string defaultSchema) => batch.Status switch
    {
        RefreshBatchStatus.Success => "All materialized views refreshed successfully",
        RefreshBatchStatus.PartialSuccess =>
            $"Some materialized views failed to refresh: {string.Join(", ", batch.FailedViews.Concat(batch.SkippedViews).Select(v => Json.Name(v.ToString(), defaultSchema)))}",
        _ when batch.Error is not null => "The refresh could not start: " + batch.Error.Message,
        _ => "No materialized view was refreshed",
    };

    private static AutomatedStatusBody AutomatedStatus(IRefreshScheduler scheduler)
    {
        var statuses = scheduler.GetStatus();
        var schedules = statuses.Select(s => new ScheduleBody(
            s.Name,
            s.Enabled,
            s.Running,
            Json.Unix(s.LastRun?.StartedAt),
            s.LastRun is { } last ? Json.Snake(last.Outcome.ToString()) : null,
            Json.Ms(s.LastRun?.Duration),
            s.LastRun?.Error,
            Json.Unix(s.NextRunUtc),
            s.Interval?.TotalSeconds,
            s.Cron,
            s.TimeZone,
            s.SucceededCount,
            s.FailedCount,
            s.SkippedTicks,
            s.DataAsOf)).ToList();
        var single = statuses.Count == 1 ? statuses[0] : null;
        return new AutomatedStatusBody(
            scheduler.IsStarted && statuses.Any(s => s.Enabled),
            statuses.Any(s => s.Running),
            Json.Unix(statuses.Select(s => s.LastRun?.StartedAt).Max()),
            Json.Unix(statuses.Select(s => s.NextRunUtc).Min()),
            single?.Interval?.TotalSeconds,
            single?.Cron,
            single?.TimeZone,
            statuses.Sum(s => s.SucceededCount),
            statuses.Sum(s => s.FailedCount),
            statuses.Sum(s => s.SkippedTicks),
            schedules);
    }

    private static AutomatedConfigBody Config(MatViewRefreshOptions core)
    {
        var schedules = core.Schedules.OrderBy(s => s.Key, StringComparer.OrdinalIgnoreCase).ToList();
        var single = schedules.Count == 1 ? schedules[0].Value : null;
        var views = schedules.SelectMany(s => s.Value.Views.Select(v => Json.Name(QualifiedName.Parse(v, core.DefaultSchema).ToString(), core.DefaultSchema))
                .Concat(s.Value.Schemas.Select(schema => schema + ".*"))
                .Concat(s.Value.Windows.Select(w => Json.Name(QualifiedName.Parse(w.Table, core.DefaultSchema).ToString(), core.DefaultSchema))))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return new AutomatedConfigBody(
            single?.Interval?.TotalSeconds,
            single?.Cron,
            single?.TimeZone,
            schedules.Any(s => !string.Equals(s.Value.Mode, nameof(RefreshMode.Full), StringComparison.OrdinalIgnoreCase)),
            views,
            [.. schedules.Select(s => s.Key)]);
    }

    private FreshnessBody Body(RefreshTarget target, ViewFreshness? f, string defaultSchema) => new(
        Json.Name(target.ToString(), defaultSchema),
        target.Kind == RefreshTargetKind.MaterializedView ? "materialized_view" : "window",
        target.Kind == RefreshTargetKind.MaterializedView,
        f?.DataAsOf,
        f?.RefreshedAt,
        Json.Ms(f?.Duration),
        f?.Age is { } age ? Math.Round(age.TotalSeconds, 3) : null,
        f?.Rating is { } rating ? Json.Snake(rating.ToString()) : null,
        f?.IsStale(options.StaleAfter) ?? true,
        f?.Mode,
        f?.RowCount,
        f?.LastAttemptAt,
        f?.LastError,
        f?.LastErrorSqlState);

    private static IResult BadValue(string parameter, string? value, string why) => Results.Problem(
        statusCode: StatusCodes.Status400BadRequest,
        title: "Invalid request value",
        detail: value is null ? $"{parameter} {why}." : $"{parameter}: '{value}' {why}.",
        extensions: new Dictionary<string, object?> { ["parameter"] = parameter, ["value"] = value });

    private static IResult UnknownView(MaterializedViewNotFoundException e, string defaultSchema) => Results.Problem(
        statusCode: StatusCodes.Status404NotFound,
        title: "Unknown materialized view",
        detail: e.Message,
        extensions: new Dictionary<string, object?>
        {
            ["view"] = Json.Name(e.Name.ToString(), defaultSchema),
            ["suggestions"] = e.Suggestions.Select(s => Json.Name(s.ToString(), defaultSchema)).ToArray(),
        });

    private static IResult Conflict(string detail) => Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: detail);
}
