namespace MatViewRefresh;

/// <summary>
/// Launches the debouncer's background work. The default runs it on the thread pool with a token cancelled when the
/// host has stopped; <c>MatViewRefresh.Testing</c> has an inline factory that runs it synchronously for deterministic tests.
/// The debouncer calls <see cref="Run"/> with execution-context flow suppressed, so work queued by the factory does not
/// carry the context (AsyncLocals, <c>Activity.Current</c>) of whichever request or timer happened to launch it.
/// </summary>
public interface IRefreshTaskFactory
{
    /// <summary>Starts <paramref name="work"/> and returns its task.</summary>
    /// <param name="work">The work; its token is cancelled when the host has stopped.</param>
    Task Run(Func<CancellationToken, Task> work);
}

/// <summary>Background tasks on the thread pool, cancelled when the container (and so the host) is disposed.</summary>
internal sealed class BackgroundRefreshTaskFactory : IRefreshTaskFactory, IDisposable
{
    private readonly CancellationTokenSource _stopped = new();

    public Task Run(Func<CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var token = _stopped.Token;
        return Task.Run(() => work(token), CancellationToken.None);
    }

    // Cancelled, not disposed: a late Run after disposal still gets a (cancelled) token instead of an exception.
    public void Dispose() => _stopped.Cancel();
}
