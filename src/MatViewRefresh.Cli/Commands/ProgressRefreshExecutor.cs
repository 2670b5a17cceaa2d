using System.Collections.Concurrent;
using System.Diagnostics;

namespace MatViewRefresh.Cli.Commands;

/// <summary>What the refresh command shows while a batch runs: which views are running, which are done and how.</summary>
internal sealed class RefreshProgress
{
    public ConcurrentDictionary<string, ViewProgress> Views { get; } = new(StringComparer.Ordinal);

    public event Action<ViewProgress>? Changed;

    public void Started(RefreshTarget target)
    {
        var view = Views.AddOrUpdate(target.ToString(), key => new ViewProgress(key), (_, v) => v);
        view.State = ViewState.Running;
        view.Attempts++;
        view.Stopwatch.Restart();
        Changed?.Invoke(view);
    }

    public void Finished(RefreshTarget target, RefreshExecution execution)
    {
        if (Views.TryGetValue(target.ToString(), out var view))
        {
            view.State = ViewState.Done;
            view.Mode = execution.Mode;
            view.Elapsed = view.Stopwatch.Elapsed;
            Changed?.Invoke(view);
        }
    }

    public void AttemptFailed(RefreshTarget target, Exception error)
    {
        if (Views.TryGetValue(target.ToString(), out var view))
        {
            view.State = ViewState.AttemptFailed;
            view.Error = CliContext.Describe(error);
            view.Elapsed = view.Stopwatch.Elapsed;
            Changed?.Invoke(view);
        }
    }
}

internal enum ViewState
{
    Running,
    Done,
    AttemptFailed,
}

internal sealed class ViewProgress(string name)
{
    public string Name { get; } = name;

    public ViewState State { get; set; }

    public int Attempts { get; set; }

    public RefreshMode? Mode { get; set; }

    public string? Error { get; set; }

    public TimeSpan Elapsed { get; set; }

    public Stopwatch Stopwatch { get; } = new();
}

/// <summary>Wraps the library's executor to see each refresh start and end (the batch API reports only at the end).</summary>
internal sealed class ProgressRefreshExecutor(IRefreshExecutor inner, RefreshProgress progress) : IRefreshExecutor
{
    public async Task<RefreshExecution> ExecuteAsync(RefreshCommand command, CancellationToken cancellationToken)
    {
        if (command.Kind != RefreshCommandKind.Refresh)
        {
            return await inner.ExecuteAsync(command, cancellationToken);
        }

        progress.Started(command.Target);
        try
        {
            var execution = await inner.ExecuteAsync(command, cancellationToken);
            progress.Finished(command.Target, execution);
            return execution;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            progress.AttemptFailed(command.Target, e);
            throw;
        }
    }
}
