namespace MatViewRefresh;

/// <summary>Reads the <c>MATVIEWREFRESH_DISABLE</c> kill switch.</summary>
internal static class KillSwitch
{
    /// <summary>1, true, yes, on — any case, surrounding spaces ignored.</summary>
    public static bool IsTruthy(string? value) =>
        value?.Trim().ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";
}
