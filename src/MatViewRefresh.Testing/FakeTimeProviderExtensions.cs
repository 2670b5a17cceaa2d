using Microsoft.Extensions.Time.Testing;

namespace MatViewRefresh.Testing;

/// <summary>
/// What <see cref="FakeTimeProvider"/> does not do by itself: fire timers the way real timers run them, without the
/// caller's <see cref="SynchronizationContext"/>.
/// </summary>
/// <remarks>
/// <see cref="FakeTimeProvider.Advance"/> runs due timer callbacks on the calling thread, under its synchronization
/// context. A test framework's context (xunit installs one for every test) makes the runtime defer every continuation
/// of a task that a callback completes — even <c>ConfigureAwait(false)</c> ones — to other threads, so a debounced run
/// that should finish inside <c>Advance</c> finishes some time later. These methods clear the context while the clock
/// moves, as a real timer thread has none, so with <see cref="InlineRefreshTaskFactory"/> and an executor that
/// completes synchronously the run is over when they return.
/// </remarks>
public static class FakeTimeProviderExtensions
{
    /// <summary><see cref="FakeTimeProvider.Advance"/> with no synchronization context while timers fire.</summary>
    /// <param name="time">The fake clock.</param>
    /// <param name="delta">How far to move it; not negative.</param>
    public static void AdvanceWithoutContext(this FakeTimeProvider time, TimeSpan delta)
    {
        ArgumentNullException.ThrowIfNull(time);
        WithoutContext(() => time.Advance(delta));
    }

    private static void WithoutContext(Action action)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }
}
