namespace MatViewRefresh;

/// <summary>
/// Schedules refreshes that the database itself runs, with the <c>pg_cron</c> extension: a named <c>cron.job</c> that calls
/// <c>CALL matview_refresh.refresh(…)</c>, which takes the same lock and writes the same log and history as the library.
/// </summary>
/// <remarks>
/// pg_cron must be loaded (<c>shared_preload_libraries = 'pg_cron'</c>) and created (<c>CREATE EXTENSION pg_cron</c>) in the
/// database the app connects to (<c>cron.database_name</c>). Jobs are named <c>matview_refresh:&lt;name&gt;</c> in <c>cron.job</c>.
/// pg_cron reads schedules in one server-wide time zone (GMT for pg_cron 1.4, <c>cron.timezone</c> from 1.5 on).
/// </remarks>
public interface IDatabaseRefreshScheduler
{
    /// <summary>
    /// Creates, or updates in place, the pg_cron job <c>matview_refresh:<paramref name="name"/></c> that refreshes the selected views.
    /// The selection is resolved now, in dependency order (as <see cref="IMaterializedViewRefresher.PlanAsync"/>), and that list is
    /// stored in the job: views created later are not refreshed until the schedule is set again.
    /// </summary>
    /// <param name="name">The schedule's name: 1 to 47 letters, digits, <c>_</c>, <c>-</c> or <c>.</c>, starting with a letter or digit.</param>
    /// <param name="cron">A pg_cron schedule (<c>*/5 * * * *</c>, <c>0 3 * * *</c>, <c>@daily</c>); pg_cron checks it.</param>
    /// <param name="selection">The views.</param>
    /// <param name="mode">The refresh mode of every view.</param>
    /// <param name="timeZone">
    /// The IANA zone <paramref name="cron"/> is meant in; <see langword="null"/> for the server's pg_cron zone. A zone whose rules
    /// differ from the server's is refused: pg_cron cannot run a job in another zone, and no fixed conversion is right across DST.
    /// </param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The job as pg_cron now holds it.</returns>
    /// <exception cref="ArgumentException">
    /// A bad name, a schedule pg_cron refuses, an unknown zone or one other than the server's, or a selection with no views.
    /// </exception>
    /// <exception cref="InvalidOperationException">pg_cron is not installed in this database.</exception>
    /// <exception cref="MaterializedViewNotFoundException">A listed name does not resolve to a materialized view.</exception>
    Task<DatabaseSchedule> ScheduleInDatabaseAsync(
        string name, string cron, RefreshSelection selection, RefreshMode mode = RefreshMode.Auto, string? timeZone = null,
        CancellationToken cancellationToken = default);

    /// <summary>Removes the pg_cron job <c>matview_refresh:<paramref name="name"/></c>.</summary>
    /// <returns><see langword="true"/> when a job was removed; <see langword="false"/> when there was none.</returns>
    /// <exception cref="InvalidOperationException">pg_cron is not installed in this database.</exception>
    Task<bool> UnscheduleInDatabaseAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Our pg_cron jobs (<c>cron.job</c>), each with its last runs (<c>cron.job_run_details</c>), newest first.</summary>
    /// <param name="lastRuns">How many runs per job to return (0 to 1000).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="InvalidOperationException">pg_cron is not installed in this database.</exception>
    Task<IReadOnlyList<DatabaseSchedule>> GetDatabaseSchedulesAsync(int lastRuns = 5, CancellationToken cancellationToken = default);
}

/// <summary>A refresh schedule run by pg_cron (a row of <c>cron.job</c>).</summary>
public sealed class DatabaseSchedule
{
    /// <summary>The schedule's name, without the <c>matview_refresh:</c> prefix.</summary>
    public required string Name { get; init; }

    /// <summary>The job's name in <c>cron.job</c> (<c>matview_refresh:</c> + <see cref="Name"/>); also the trigger recorded in the history.</summary>
    public required string JobName { get; init; }

    /// <summary>pg_cron's job id.</summary>
    public required long JobId { get; init; }

    /// <summary>The cron schedule, in pg_cron's server-wide time zone.</summary>
    public required string Cron { get; init; }

    /// <summary>The SQL the job runs.</summary>
    public required string Command { get; init; }

    /// <summary>The database the job runs in.</summary>
    public required string Database { get; init; }

    /// <summary>Whether pg_cron runs the job.</summary>
    public required bool Active { get; init; }

    /// <summary>The last runs, newest first.</summary>
    public required IReadOnlyList<DatabaseScheduleRun> LastRuns { get; init; }
}

/// <summary>One run of a pg_cron job (a row of <c>cron.job_run_details</c>).</summary>
public sealed class DatabaseScheduleRun
{
    /// <summary>pg_cron's run id.</summary>
    public required long RunId { get; init; }

    /// <summary>pg_cron's status: <c>starting</c>, <c>running</c>, <c>sending</c>, <c>connecting</c>, <c>succeeded</c> or <c>failed</c>.</summary>
    public required string Status { get; init; }

    /// <summary>When the run started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the run ended.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>pg_cron's message: the command tag (<c>CALL</c>) or the error. A view's own failure is in the refresh history, not here.</summary>
    public string? Message { get; init; }
}
