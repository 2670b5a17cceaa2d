using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>The pg_cron backend of <see cref="IDatabaseRefreshScheduler"/>.</summary>
internal sealed partial class DatabaseRefreshScheduler(
    RefreshDataSource dataSource, RefreshLogSchema logSchema, IMaterializedViewRefresher refresher, IOptions<MatViewRefreshOptions> options)
    : IDatabaseRefreshScheduler
{
    /// <summary>What our jobs' names start with in <c>cron.job</c>.</summary>
    public const string JobPrefix = "matview_refresh:";

    /// <summary>pg_cron 1.4 has no <c>cron.timezone</c>: it reads schedules in GMT.</summary>
    private const string DefaultCronZone = "GMT";

    public async Task<DatabaseSchedule> ScheduleInDatabaseAsync(
        string name, string cron, RefreshSelection selection, RefreshMode mode = RefreshMode.Auto, string? timeZone = null,
        CancellationToken cancellationToken = default)
    {
        var jobName = JobName(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(cron);
        ArgumentNullException.ThrowIfNull(selection);
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown refresh mode.");
        }

        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var cronZone = await RequirePgCronAsync(connection, cancellationToken).ConfigureAwait(false);
        if (timeZone is not null)
        {
            CheckZone(timeZone, cronZone);
        }

        var plan = await refresher.PlanAsync(selection, new RefreshOptions { Mode = mode }, cancellationToken).ConfigureAwait(false);
        if (plan.Steps.Count == 0)
        {
            throw new ArgumentException(
                "The selection has no materialized views, so the job would refresh nothing: the list of views is stored when you " +
                "schedule, and views created later are not picked up until you schedule again.", nameof(selection));
        }

        var views = new string[plan.Steps.Count, 3];
        for (var i = 0; i < plan.Steps.Count; i++)
        {
            var view = plan.Steps[i].View;
            views[i, 0] = view.Schema;
            views[i, 1] = view.Name;
            views[i, 2] = view.ToString();
        }

        await logSchema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        var schema = options.Value.Schema;
        await using (var check = new NpgsqlCommand("SELECT to_regprocedure(format('%I.refresh(text[], text, text, text)', $1::text)) IS NOT NULL", connection))
        {
            check.Parameters.Add(new NpgsqlParameter { Value = schema });
            if (!(bool)(await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                throw new InvalidOperationException(
                    $"The procedure {SqlIdentifier.Quote(schema)}.refresh(text[], text, text, text) is missing: run the log schema script " +
                    "(IRefreshLog.EnsureSchemaAsync(), or sql/matview_refresh.sql) before scheduling refreshes in the database.");
            }
        }

        // The command is built by the server: %I quotes the schema, %L quotes the view list and the other values as literals.
        const string Sql = """
            SELECT cron.schedule_in_database($1, $2,
                format('CALL %I.refresh(%L::text[], %L, %L, %L)', $3::text, $4::text[], $5::text, $1::text, $6::text),
                current_database())
            """;
        await using (var command = new NpgsqlCommand(Sql, connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = jobName });
            command.Parameters.Add(new NpgsqlParameter { Value = cron });
            command.Parameters.Add(new NpgsqlParameter { Value = schema });
            command.Parameters.Add(new NpgsqlParameter { Value = views, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = RefreshTelemetry.ModeTag(mode) });
            command.Parameters.Add(new NpgsqlParameter { Value = RefreshSql.Milliseconds(options.Value.LockTimeout) });
            try
            {
                await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.MessageText.StartsWith("invalid schedule", StringComparison.Ordinal))
            {
                throw new ArgumentException($"pg_cron refuses the schedule '{cron}': {e.MessageText}.", nameof(cron), e);
            }
        }

        var jobs = await ReadAsync(connection, jobName, 0, cancellationToken).ConfigureAwait(false);
        return jobs.Count == 1 ? jobs[0] : throw new InvalidOperationException($"pg_cron did not keep the job {jobName}.");
    }

    public async Task<bool> UnscheduleInDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        var jobName = JobName(name);
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await RequirePgCronAsync(connection, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT count(*) FILTER (WHERE cron.unschedule(jobid)) FROM cron.job WHERE jobname = $1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = jobName });
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! > 0;
    }

    public async Task<IReadOnlyList<DatabaseSchedule>> GetDatabaseSchedulesAsync(int lastRuns = 5, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lastRuns);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(lastRuns, 1000);
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await RequirePgCronAsync(connection, cancellationToken).ConfigureAwait(false);
        return await ReadAsync(connection, null, lastRuns, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>matview_refresh:</c> + a checked name.</summary>
    internal static string JobName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!NamePattern().IsMatch(name))
        {
            throw new ArgumentException(
                $"'{name}' is not a schedule name: use 1 to 47 letters, digits, '_', '-' or '.', starting with a letter or digit.", nameof(name));
        }

        return JobPrefix + name;
    }

    /// <summary>Refuses a zone whose rules differ from pg_cron's server-wide zone.</summary>
    internal static void CheckZone(string timeZone, string cronZone)
    {
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        catch (TimeZoneNotFoundException e)
        {
            throw new ArgumentException($"'{timeZone}' is not a known time zone.", nameof(timeZone), e);
        }
        catch (InvalidTimeZoneException e)
        {
            throw new ArgumentException($"'{timeZone}' is not a valid time zone.", nameof(timeZone), e);
        }

        TimeZoneInfo? server = null;
        try
        {
            server = TimeZoneInfo.FindSystemTimeZoneById(cronZone);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            // not a zone .NET knows: refused below
        }

        if (server is null || !SameRules(zone, server))
        {
            throw new ArgumentException(
                $"pg_cron runs every schedule in the server's time zone, {cronZone} (cron.timezone; pg_cron 1.4 has no such setting and uses GMT), " +
                $"and '{timeZone}' differs from it. A fixed conversion would be wrong across daylight saving time changes: write the schedule " +
                $"in {cronZone} and pass timeZone: null (or \"{cronZone}\"), or use the in-process scheduler for schedules in other zones.",
                nameof(timeZone));
        }
    }

    private static bool SameRules(TimeZoneInfo a, TimeZoneInfo b)
    {
        if (a.HasSameRules(b))
        {
            return true;
        }

        // UTC, Etc/UTC, GMT, Etc/GMT…: no offset and no daylight saving time in either.
        return a.BaseUtcOffset == TimeSpan.Zero && b.BaseUtcOffset == TimeSpan.Zero
            && !a.SupportsDaylightSavingTime && !b.SupportsDaylightSavingTime && a.GetAdjustmentRules().Length == 0 && b.GetAdjustmentRules().Length == 0;
    }

    /// <summary>Fails clearly when pg_cron is not there; returns its time zone.</summary>
    private static async Task<string> RequirePgCronAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT to_regclass('cron.job') IS NOT NULL AND to_regprocedure('cron.schedule_in_database(text, text, text, text, text, boolean)') IS NOT NULL,
                   current_database(), current_setting('cron.database_name', true), current_setting('cron.timezone', true),
                   current_setting('shared_preload_libraries')
            """,
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var installed = reader.GetBoolean(0);
        var database = reader.GetString(1);
        var cronDatabase = reader.IsDBNull(2) ? null : reader.GetString(2);
        var zone = reader.IsDBNull(3) || reader.GetString(3).Length == 0 ? DefaultCronZone : reader.GetString(3);
        var preload = reader.GetString(4);
        if (!installed)
        {
            var loaded = cronDatabase is null
                ? $"pg_cron is not loaded (shared_preload_libraries = '{preload}')"
                : $"pg_cron is loaded and runs in database '{cronDatabase}' (cron.database_name)";
            throw new InvalidOperationException(
                $"Scheduling refreshes in the database needs the pg_cron extension (1.4 or later) in database '{database}': {loaded}, " +
                $"and CREATE EXTENSION pg_cron has not been run here. Set shared_preload_libraries = 'pg_cron' and " +
                $"cron.database_name = '{database}' in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron; in '{database}'.");
        }

        return zone;
    }

    private static async Task<IReadOnlyList<DatabaseSchedule>> ReadAsync(
        NpgsqlConnection connection, string? jobName, int lastRuns, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT j.jobid, j.jobname, j.schedule, j.command, j.database, j.active, r.runid, r.status, r.start_time, r.end_time, r.return_message
            FROM cron.job j
            LEFT JOIN LATERAL (
                SELECT d.runid, d.status, d.start_time, d.end_time, d.return_message FROM cron.job_run_details d
                WHERE d.jobid = j.jobid ORDER BY d.runid DESC LIMIT $3) r ON true
            WHERE left(j.jobname, length($1)) = $1 AND ($2::text IS NULL OR j.jobname = $2)
            ORDER BY j.jobname, j.jobid, r.runid DESC
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = JobPrefix });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)jobName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = lastRuns });
        var schedules = new List<DatabaseSchedule>();
        List<DatabaseScheduleRun>? runs = null;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var jobId = reader.GetInt64(0);
            if (schedules.Count == 0 || schedules[^1].JobId != jobId)
            {
                runs = [];
                var name = reader.GetString(1);
                schedules.Add(new DatabaseSchedule
                {
                    JobId = jobId,
                    JobName = name,
                    Name = name[JobPrefix.Length..],
                    Cron = reader.GetString(2),
                    Command = reader.GetString(3),
                    Database = reader.GetString(4),
                    Active = reader.GetBoolean(5),
                    LastRuns = runs,
                });
            }

            if (!reader.IsDBNull(6))
            {
                runs!.Add(new DatabaseScheduleRun
                {
                    RunId = reader.GetInt64(6),
                    Status = reader.IsDBNull(7) ? string.Empty : reader.GetString(7),
                    StartedAt = reader.IsDBNull(8) ? null : reader.GetFieldValue<DateTimeOffset>(8),
                    FinishedAt = reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9),
                    Message = reader.IsDBNull(10) ? null : reader.GetString(10),
                });
            }
        }

        return schedules;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,46}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
