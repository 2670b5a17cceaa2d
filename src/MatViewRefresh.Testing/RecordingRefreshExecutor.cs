using System.Collections.Concurrent;

namespace MatViewRefresh.Testing;

/// <summary>
/// An <see cref="IRefreshExecutor"/> that records every command instead of running it, for tests that
/// assert what would run. Register it in place of the default:
/// <c>services.AddSingleton&lt;IRefreshExecutor&gt;(recorder)</c>.
/// </summary>
public sealed class RecordingRefreshExecutor : IRefreshExecutor
{
    private readonly ConcurrentQueue<RefreshCommand> _commands = new();

    /// <summary>Decides what each command returns or throws; the default returns <see cref="RefreshExecution.Empty"/>.</summary>
    public Func<RefreshCommand, CancellationToken, Task<RefreshExecution>> Handler { get; set; } =
        (_, _) => Task.FromResult(RefreshExecution.Empty);

    /// <summary>Every command received, in order.</summary>
    public IReadOnlyList<RefreshCommand> Commands => [.. _commands];

    /// <summary>The refresh commands received (failure records left out), in order.</summary>
    public IReadOnlyList<RefreshCommand> Refreshes => [.. _commands.Where(c => c.Kind == RefreshCommandKind.Refresh)];

    /// <inheritdoc />
    public Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        _commands.Enqueue(command);
        return Handler(command, cancellationToken);
    }
}
