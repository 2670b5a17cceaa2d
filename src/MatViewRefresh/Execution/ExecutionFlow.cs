namespace MatViewRefresh;

/// <summary>
/// Keeps a caller's <see cref="ExecutionContext"/> (its AsyncLocals, its Activity) out of timers and background work the
/// library creates on the caller's behalf: those live as long as a key or a schedule, not as long as the call.
/// </summary>
internal static class ExecutionFlow
{
    /// <summary>Stops the current execution context from flowing into timers and tasks created until <see cref="Restore"/>.</summary>
    /// <returns>Whether this call suppressed it (pass to <see cref="Restore"/>).</returns>
    public static bool Suppress()
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            return false;
        }

        ExecutionContext.SuppressFlow();
        return true;
    }

    /// <summary>Restores the flow if <paramref name="suppressed"/> says <see cref="Suppress"/> suppressed it.</summary>
    public static void Restore(bool suppressed)
    {
        if (suppressed && ExecutionContext.IsFlowSuppressed())
        {
            ExecutionContext.RestoreFlow();
        }
    }
}
