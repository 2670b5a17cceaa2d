using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>A run of one target: claim, refresh through the refresher, settle (views, targets failing lately, and every target when grouping is off).</summary>
internal sealed partial class DurableRefreshWorker
{
    /// <summary>One target's run (<see cref="RunAsync"/>); an unexpected failure is logged and the target left alone for PollInterval.</summary>
    private async Task RunAloneAsync(string key, DurableRegistration registration, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        try
        {
            await RunAsync(key, registration, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Log.DurableRunFailed(_logger, key, 0, e.Message, 0, e);
            NotBefore(key, _durable.PollInterval);
        }
    }

    /// <summary>
    /// One run of one target: claim, refresh, settle, in two round trips of its own besides the refresh's. Every exit before the
    /// commit rolls the claim back. The settle sends COMMIT in its batch (the transaction object then sees the connection idle
    /// and its disposal sends nothing); when a statement before it fails, the server skips the COMMIT and the disposal rolls back.
    /// </summary>
    private async Task RunAsync(string key, DurableRegistration registration, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // One round trip: the claim lock (and the database clock, and the failures so far), a savepoint after it (a failed
        // refresh rolls back to it: the DELETE undone, the lock kept for the settle), and the DELETE, which deletes only under
        // the lock (see DurableSql.Claim).
        var locked = false;
        var claimedAt = default(DateTimeOffset);
        var failures = 0;
        var groups = new List<RefreshRequestRow>();
        long covered = 0;
        DateTimeOffset oldest = DateTimeOffset.MaxValue;
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(Command(_sql.Lock, key));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SAVEPOINT claim"));
            batch.BatchCommands.Add(Command(_sql.Claim, key));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            locked = reader.GetBoolean(0);
            claimedAt = reader.GetFieldValue<DateTimeOffset>(1);
            failures = reader.IsDBNull(2) ? 0 : reader.GetInt32(2);
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.FieldCount != 5)
                {
                    continue; // the savepoint's (empty) result, where the reader reports one
                }

                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    groups.Add(new RefreshRequestRow(reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateOnly>(1), reader.GetBoolean(2)));
                    covered += reader.GetInt64(3);
                    var first = reader.GetFieldValue<DateTimeOffset>(4);
                    oldest = first < oldest ? first : oldest;
                }
            }
        }

        if (!locked)
        {
            // Another instance is running it. Not committed: the transaction rolls back with its disposal, which also undoes
            // a DELETE made had the lock been freed between the two statements.
            NotBefore(key, _durable.PollInterval);
            return;
        }

        if (covered == 0)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false); // another instance ran them since the poll
            return;
        }

        var days = ChangeCaptureRequests.From(groups);
        var target = registration.Target;
        RefreshResult result;
        try
        {
            result = await _refresher.RefreshAsync(target, RunOptions(registration, days), cancellationToken).ConfigureAwait(false);
        }
        catch (MaterializedViewNotFoundException) when (target.Kind == RefreshTargetKind.MaterializedView && registration.Options is null)
        {
            Unresolved(key); // not a view: a window or function target this instance does not know; the claim rolls back
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            result = new RefreshResult
            {
                Target = target,
                Outcome = RefreshOutcome.Failed,
                RequestedMode = RefreshMode.Auto,
                StartedAt = _time.GetUtcNow(),
                FinishedAt = _time.GetUtcNow(),
                Error = new RefreshError(null, e.Message, e),
            };
        }

        if (result.Success)
        {
            double? lag = null;
            await using (var batch = new NpgsqlBatch(connection, transaction))
            {
                if (result.DataAsOf is { } asOf && result.RefreshedAt is { } refreshedAt)
                {
                    lag = Math.Max(0, (refreshedAt - oldest).TotalMilliseconds);
                    batch.BatchCommands.Add(Command(_sql.Lag, target.LogName, target.Scope, asOf, claimedAt, refreshedAt, oldest));
                }

                batch.BatchCommands.Add(Command(_sql.Succeeded, key, claimedAt));
                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT")); // in the same round trip; skipped if a statement before it fails
                await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }

            Log.DurableRunSucceeded(_logger, key, covered, days.ToString(), lag ?? double.NaN);
            return;
        }

        cancellationToken.ThrowIfCancellationRequested();
        TimeSpan retryIn;
        string? error = null;
        if (result.Outcome == RefreshOutcome.Coalesced)
        {
            retryIn = _timing.DelayMin; // another refresh of it (not queued) is running: its snapshot may predate our requests
            Log.DurableRunCoalesced(_logger, key);
        }
        else
        {
            failures++;
            retryIn = DurableTiming.Backoff(failures, _timing);
            error = result.Error?.ToString() ?? result.Outcome.ToString();
            Log.DurableRunFailed(_logger, key, failures, error, retryIn.TotalMilliseconds, null);
        }

        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("ROLLBACK TO SAVEPOINT claim")); // the requests stay; the lock is kept
            batch.BatchCommands.Add(Command(_sql.SetBack, key, failures, retryIn, (object?)error ?? DBNull.Value));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(value switch
            {
                string s => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = s },
                DateTimeOffset d => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = d.ToUniversalTime() },
                TimeSpan t => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Interval, Value = t },
                DBNull => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = DBNull.Value },
                _ => new NpgsqlParameter { Value = value },
            });
        }

        return command;
    }
}
