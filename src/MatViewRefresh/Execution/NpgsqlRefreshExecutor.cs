using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Runs a command's statements as one <see cref="NpgsqlBatch"/>: one implicit transaction, one round trip.</summary>
internal sealed class NpgsqlRefreshExecutor(RefreshDataSource dataSource, IOptions<MatViewRefreshOptions> options, ILogger<NpgsqlRefreshExecutor> logger) : IRefreshExecutor
{
    private volatile bool _prepare = options.Value.PrepareStatements;

    public async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        var prepare = _prepare && command.Kind == RefreshCommandKind.Refresh && command.Target.Kind == RefreshTargetKind.MaterializedView;
        if (!prepare)
        {
            return await ExecuteAsync(command, prepare: false, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            return await ExecuteAsync(command, prepare: true, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is "26000" or "42P05" or "08P01")
        {
            // Prepared statement missing (26000), already taken (42P05), or bound to another client's (08P01): a pooler in
            // transaction mode (PgBouncer before 1.21) shares server connections between clients. Nothing was committed;
            // send it again unprepared, and stop preparing (best effort: set PrepareStatements=false behind such a pooler).
            _prepare = false;
            Log.PreparedStatementsUnavailable(logger, e.MessageText);
            return await ExecuteAsync(command, prepare: false, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, bool prepare, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = connection.CreateBatch();

        // No client-side timeout (Npgsql's default is 30 s): a long refresh is bounded by StatementTimeout on the server
        // and AttemptTimeout in the pipeline, never cancelled and retried by a default the caller did not choose.
        batch.Timeout = 0;
        var statements = command.Statements;
        for (var s = 0; s < statements.Count; s++)
        {
            var statement = statements[s];
            var batchCommand = new NpgsqlBatchCommand(statement.CommandText);
            var parameters = statement.Parameters;
            for (var p = 0; p < parameters.Count; p++)
            {
                batchCommand.Parameters.Add(new NpgsqlParameter { Value = parameters[p] ?? DBNull.Value });
            }

            batch.BatchCommands.Add(batchCommand);
        }

        // Our statements are fixed text with values as parameters: prepared once per physical connection, later calls
        // skip parsing and planning on the server (a no-op without a round trip when already prepared on the connection).
        // Function targets are not prepared: their values' types vary from call to call.
        if (prepare)
        {
            await batch.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }

        // Without an explicit transaction every statement of a batch runs in one implicit transaction:
        // an error in any of them rolls back all of them, and SET LOCAL values last until its end.
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var execution = RefreshExecution.Empty;

        // The contract: the last statement reports the refresh by column name (mode, mode_reason, data_as_of,
        // refreshed_at, duration_ms, row_count, strategy, rows_deleted, rows_inserted; any of them). Earlier results — a function target's own — are not read.
        for (var result = 1; result < statements.Count; result++)
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        }

        if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            execution = Read(reader);
        }

        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
        {
        }

        return execution;
    }

    internal static RefreshExecution Read(NpgsqlDataReader reader)
    {
        DateTimeOffset? dataAsOf = null, refreshedAt = null;
        TimeSpan? duration = null;
        long? rows = null;
        RefreshMode? mode = null;
        string? reason = null;
        WindowStrategy? strategy = null;
        long? deleted = null, inserted = null;
        for (var i = 0; i < reader.FieldCount; i++)
        {
            if (reader.IsDBNull(i))
            {
                continue;
            }

            switch (reader.GetName(i))
            {
                case "data_as_of": dataAsOf = reader.GetFieldValue<DateTimeOffset>(i); break;
                case "refreshed_at": refreshedAt = reader.GetFieldValue<DateTimeOffset>(i); break;
                case "duration_ms": duration = TimeSpan.FromMilliseconds(reader.GetDouble(i)); break;
                case "row_count": rows = reader.GetInt64(i); break;
                case "mode": mode = RefreshTelemetry.ParseMode(reader.GetString(i)); break;
                case "mode_reason": reason = reader.GetString(i); break;
                case "strategy": strategy = reader.GetString(i) == "full" ? WindowStrategy.Full : WindowStrategy.Incremental; break;
                case "rows_deleted": deleted = reader.GetInt64(i); break;
                case "rows_inserted": inserted = reader.GetInt64(i); break;
                default: break;
            }
        }

        return new RefreshExecution
        {
            DataAsOf = dataAsOf, RefreshedAt = refreshedAt, ServerDuration = duration, RowCount = rows, Mode = mode, ModeReason = reason,
            Strategy = strategy, RowsDeleted = deleted, RowsInserted = inserted,
        };
    }
}
