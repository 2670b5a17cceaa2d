using Microsoft.Extensions.Logging;
using Npgsql;

namespace MatViewRefresh;

/// <summary>The worker's optional wake-up by LISTEN/NOTIFY (<see cref="DurableRefreshOptions.ListenNotify"/>).</summary>
internal sealed partial class DurableRefreshWorker
{
    /// <summary>LISTENs on the queue's channel; a notification wakes the loop once the settle delay of the new request can have passed.</summary>
    private async Task ListenAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                connection.Notification += (_, _) => OnNotified();
                await using (var command = new NpgsqlCommand("LISTEN " + SqlIdentifier.Quote(_queue.Channel), connection))
                {
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                Wake(); // requests made while not listening
                while (true)
                {
                    await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.DurablePollFailed(_logger, "LISTEN: " + e.Message, e);
                try
                {
                    await Task.Delay(_durable.PollInterval, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnNotified()
    {
        // A burst of notifications makes one wake-up, when the first request can be due (its settle delay, at least 10 ms).
        if (Interlocked.Exchange(ref _notifyPending, 1) == 1)
        {
            return;
        }

        var delay = _timing.DelayMin < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : _timing.DelayMin;
        ITimer? timer = null;
        timer = _time.CreateTimer(_ =>
        {
            Interlocked.Exchange(ref _notifyPending, 0);
            Wake();
            timer?.Dispose();
        }, null, delay, Timeout.InfiniteTimeSpan);
    }
}
