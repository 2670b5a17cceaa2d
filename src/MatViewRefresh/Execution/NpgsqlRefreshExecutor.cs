using Npgsql;

namespace MatViewRefresh;

/// <summary>Runs a command's statements as one <see cref="NpgsqlBatch"/>: one implicit transaction, one round trip.</summary>
internal sealed class NpgsqlRefreshExecutor(RefreshDataSource dataSource) : IRefreshExecutor
{
    public async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = connection.CreateBatch();
        foreach (var statement in command.Statements)
        {
            var batchCommand = new NpgsqlBatchCommand(statement.CommandText);
            foreach (var value in statement.Parameters)
            {
                batchCommand.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            batch.BatchCommands.Add(batchCommand);
        }

        // Without an explicit transaction every statement of a batch runs in one implicit transaction:
        // an error in any of them rolls back all of them, and SET LOCAL values last until its end.
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var execution = RefreshExecution.Empty;
        while (true)
        {
            // The contract: the last statement returning (refreshed_at, duration_ms, row_count) reports the refresh.
            if (reader.FieldCount == 3 && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                execution = new RefreshExecution(
                    reader.IsDBNull(0) ? null : reader.GetFieldValue<DateTimeOffset>(0),
                    reader.IsDBNull(1) ? null : TimeSpan.FromMilliseconds(reader.GetDouble(1)),
                    reader.IsDBNull(2) ? null : reader.GetInt64(2));
            }

            if (!await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                break;
            }
        }

        return execution;
    }
}
