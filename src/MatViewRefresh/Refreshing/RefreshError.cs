namespace MatViewRefresh;

/// <summary>Why a refresh failed.</summary>
/// <param name="SqlState">The PostgreSQL SQLSTATE (for example <c>55000</c>), or <see langword="null"/> when the failure did not come from the server (connection loss, timeout).</param>
/// <param name="Message">A message for people.</param>
/// <param name="Exception">The exception behind the failure, if any.</param>
public sealed record RefreshError(string? SqlState, string Message, Exception? Exception = null)
{
    /// <inheritdoc />
    public override string ToString() => SqlState is null ? Message : $"{SqlState}: {Message}";
}
