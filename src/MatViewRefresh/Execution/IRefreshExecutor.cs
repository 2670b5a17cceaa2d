namespace MatViewRefresh;

/// <summary>
/// The seam that runs a refresh's SQL. The default sends <see cref="RefreshCommand.Statements"/> to the
/// app's <see cref="Npgsql.NpgsqlDataSource"/> as one batch, in one implicit transaction and one round trip.
/// Replace it (register your own before or after <c>AddMatViewRefresh</c>) to record, fake or reroute refreshes.
/// </summary>
public interface IRefreshExecutor
{
    /// <summary>Runs <paramref name="command"/>'s statements as one transaction.</summary>
    /// <param name="command">What to run.</param>
    /// <param name="cancellationToken">Cancels the command; the default executor then cancels the statement on the server.</param>
    /// <returns>What the last statement returned (see <see cref="RefreshExecution"/>).</returns>
    /// <exception cref="Npgsql.NpgsqlException">The database failed the command; the transaction was rolled back.</exception>
    Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken);
}
