using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Runs a command's statements as one <see cref="NpgsqlBatch"/>: one implicit transaction, one round trip.</summary>
internal sealed class NpgsqlRefreshExecutor(RefreshDataSource dataSource, IOptions<MatViewRefreshOptions> options) : IRefreshExecutor
{
    private readonly bool _prepare = options.Value.PrepareStatements;

    public async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = connection.CreateBatch();
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
        // A function target's call has no nulls we can type; it is prepared only when every value has a type.
        if (_prepare && command.Kind == RefreshCommandKind.Refresh && command.Target.Kind == RefreshTargetKind.MaterializedView)
        {
            await batch.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }

        // Without an explicit transaction every statement of a batch runs in one implicit transaction:
        // an error in any of them rolls back all of them, and SET LOCAL values last until its end.
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var execution = RefreshExecution.Empty;
        while (true)
        {
            // The contract: the last statement returning refreshed_at (and optionally mode, mode_reason, data_as_of,
            // duration_ms, row_count) reports the refresh.
            if (reader.FieldCount > 1 && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                execution = Read(reader);
            }

            if (!await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                break;
            }
        }

        return execution;
    }

    private static RefreshExecution Read(NpgsqlDataReader reader)
    {
        DateTimeOffset? dataAsOf = null, refreshedAt = null;
        TimeSpan? duration = null;
        long? rows = null;
        RefreshMode? mode = null;
        string? reason = null;
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
                default: break;
            }
        }

        return new RefreshExecution { DataAsOf = dataAsOf, RefreshedAt = refreshedAt, ServerDuration = duration, RowCount = rows, Mode = mode, ModeReason = reason };
    }
}
