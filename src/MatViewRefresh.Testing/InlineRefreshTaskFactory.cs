namespace MatViewRefresh.Testing;

/// <summary>
/// An <see cref="IRefreshTaskFactory"/> that runs work on the calling thread until its first incomplete await —
/// with a <c>FakeTimeProvider</c> moved by <see cref="FakeTimeProviderExtensions.AdvanceWithoutContext"/> and an executor
/// that completes synchronously, a debounced run happens inside that call, deterministically.
/// </summary>
public sealed class InlineRefreshTaskFactory : IRefreshTaskFactory
{
    /// <summary>How many pieces of work were started.</summary>
    public int Started => _started;

    private int _started;

    /// <inheritdoc />
    public Task Run(Func<CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Interlocked.Increment(ref _started);
        return work(CancellationToken.None);
    }
}
