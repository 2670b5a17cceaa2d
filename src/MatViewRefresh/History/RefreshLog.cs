using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Reads the refresh log tables.</summary>
internal sealed class RefreshLog(RefreshDataSource dataSource, RefreshLogSchema schema, IOptions<MatViewRefreshOptions> options) : IRefreshLog
{
    private string Schema => SqlIdentifier.Quote(options.Value.Schema);

    public Task EnsureSchemaAsync(CancellationToken cancellationToken = default) => schema.EnsureAsync(cancellationToken, force: true);

    public Task<ViewFreshness?> GetFreshnessAsync(RefreshTarget target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        target = target.WithDefaultSchema(options.Value.DefaultSchema);
        return ReadAsync(() => FreshnessAsync(target, cancellationToken), cancellationToken);
    }

    public Task<IReadOnlyList<RefreshHistoryEntry>> GetHistoryAsync(int limit = 100, RefreshTarget? target = null, DateTimeOffset? since = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 10_000);
        return ReadAsync(() => HistoryAsync(limit, target, since, cancellationToken), cancellationToken);
    }

    public Task<RefreshSummary> GetSummaryAsync(RefreshTarget? target = null, DateTimeOffset? since = null, CancellationToken cancellationToken = default) =>
        ReadAsync(() => SummaryAsync(target, since, cancellationToken), cancellationToken);

    /// <summary>
    /// Runs a read of the log; when the log is damaged (a table or the schema missing) and <see cref="MatViewRefreshOptions.AutoCreateSchema"/>
    /// is on, re-creates the schema once and reads again, as a refresh does.
    /// </summary>
    private async Task<T> ReadAsync<T>(Func<Task<T>> read, CancellationToken cancellationToken)
    {
        await schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (PostgresException e) when (options.Value.AutoCreateSchema && TransientErrors.IsMissingLogObject(e, options.Value.Schema))
        {
            await schema.EnsureAsync(cancellationToken, force: true).ConfigureAwait(false);
            return await read().ConfigureAwait(false);
        }
    }

    private async Task<ViewFreshness?> FreshnessAsync(RefreshTarget target, CancellationToken cancellationToken)
    {
        var sql = $"""
            SELECT target, scope, last_refreshed_at, duration_ms, clock_timestamp() - coalesce(data_as_of, last_refreshed_at), mode, row_count,
                   last_attempt_at, last_error, last_error_state, coalesce(data_as_of, last_refreshed_at),
                   (SELECT h.lag_ms FROM {Schema}.refresh_history h
                     WHERE h.target = $1 AND h.scope = $2 AND h.success AND h.lag_ms IS NOT NULL ORDER BY h.started_at DESC LIMIT 1)
              FROM {Schema}.refresh_log WHERE target = $1 AND scope = $2
            """;
        await using var command = dataSource.Value.CreateCommand(sql);
        command.Parameters.Add(new() { Value = target.LogName });
        command.Parameters.Add(new() { Value = target.Scope });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        TimeSpan? duration = reader.IsDBNull(3) ? null : TimeSpan.FromMilliseconds(reader.GetDouble(3));
        return new ViewFreshness
        {
            Target = reader.GetString(0),
            Scope = reader.GetString(1),
            RefreshedAt = reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2),
            DataAsOf = reader.IsDBNull(10) ? null : reader.GetFieldValue<DateTimeOffset>(10),
            Duration = duration,
            Age = reader.IsDBNull(4) ? null : reader.GetFieldValue<TimeSpan>(4),
            Mode = reader.IsDBNull(5) ? null : reader.GetString(5),
            RowCount = reader.IsDBNull(6) ? null : reader.GetInt64(6),
            LastAttemptAt = reader.GetFieldValue<DateTimeOffset>(7),
            LastError = reader.IsDBNull(8) ? null : reader.GetString(8),
            LastErrorSqlState = reader.IsDBNull(9) ? null : reader.GetString(9),
            Rating = duration is { } d ? Rate(d, options.Value) : null,
            LastLag = reader.IsDBNull(11) ? null : TimeSpan.FromMilliseconds(reader.GetDouble(11)),
        };
    }

    private async Task<IReadOnlyList<RefreshHistoryEntry>> HistoryAsync(int limit, RefreshTarget? target, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var sql = $"""
            SELECT id, target, scope, started_at, duration_ms, success, mode, attempts, trigger, error_state, error_message, data_as_of
              FROM {Schema}.refresh_history
             WHERE ($1::text IS NULL OR (target = $1 AND scope = $2)) AND ($3::timestamptz IS NULL OR started_at >= $3)
             ORDER BY started_at DESC, id DESC
             LIMIT $4
            """;
        await using var command = dataSource.Value.CreateCommand(sql);
        AddFilter(command, target, since);
        command.Parameters.Add(new() { Value = limit });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var entries = new List<RefreshHistoryEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(new RefreshHistoryEntry
            {
                Id = reader.GetInt64(0),
                Target = reader.GetString(1),
                Scope = reader.GetString(2),
                StartedAt = reader.GetFieldValue<DateTimeOffset>(3),
                Duration = TimeSpan.FromMilliseconds(reader.GetDouble(4)),
                Success = reader.GetBoolean(5),
                Mode = reader.IsDBNull(6) ? null : reader.GetString(6),
                Attempts = reader.GetInt32(7),
                Trigger = reader.GetString(8),
                ErrorSqlState = reader.IsDBNull(9) ? null : reader.GetString(9),
                ErrorMessage = reader.IsDBNull(10) ? null : reader.GetString(10),
                DataAsOf = reader.IsDBNull(11) ? null : reader.GetFieldValue<DateTimeOffset>(11),
            });
        }

        return entries;
    }

    private async Task<RefreshSummary> SummaryAsync(RefreshTarget? target, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var sql = $"""
            SELECT count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success),
                   avg(duration_ms) FILTER (WHERE success),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE success),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE success),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE success),
                   min(duration_ms) FILTER (WHERE success), max(duration_ms) FILTER (WHERE success),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms) FILTER (WHERE success AND lag_ms IS NOT NULL),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms) FILTER (WHERE success AND lag_ms IS NOT NULL),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) FILTER (WHERE success AND lag_ms IS NOT NULL)
              FROM {Schema}.refresh_history
             WHERE ($1::text IS NULL OR (target = $1 AND scope = $2)) AND ($3::timestamptz IS NULL OR started_at >= $3)
            """;
        await using var command = dataSource.Value.CreateCommand(sql);
        AddFilter(command, target, since);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        TimeSpan? Ms(int i) => reader.IsDBNull(i) ? null : TimeSpan.FromMilliseconds(reader.GetDouble(i));
        return new RefreshSummary
        {
            Count = reader.GetInt64(0),
            Successes = reader.GetInt64(1),
            Failures = reader.GetInt64(2),
            Average = Ms(3),
            P50 = Ms(4),
            P95 = Ms(5),
            P99 = Ms(6),
            Min = Ms(7),
            Max = Ms(8),
            LagP50 = Ms(9),
            LagP95 = Ms(10),
            LagP99 = Ms(11),
        };
    }

    internal static RefreshRating Rate(TimeSpan duration, MatViewRefreshOptions options) =>
        duration <= options.FastThreshold ? RefreshRating.Fast
        : duration <= options.SlowThreshold ? RefreshRating.Normal
        : RefreshRating.Slow;

    private void AddFilter(NpgsqlCommand command, RefreshTarget? target, DateTimeOffset? since)
    {
        target = target?.WithDefaultSchema(options.Value.DefaultSchema);
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)target?.LogName ?? DBNull.Value });
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)target?.Scope ?? DBNull.Value });
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz, Value = (object?)since?.ToUniversalTime() ?? DBNull.Value });
    }
}
