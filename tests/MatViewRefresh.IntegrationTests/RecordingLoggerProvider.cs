using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MatViewRefresh.IntegrationTests;

/// <summary>Captures log events so tests can assert on them and react to them (for example, on the first retry).</summary>
public sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(EventId Id, LogLevel Level, string Message)> _events = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiters = new();

    private readonly ConcurrentDictionary<string, bool> _categories = new(StringComparer.Ordinal);

    public IReadOnlyList<(EventId Id, LogLevel Level, string Message)> Events => [.. _events];

    /// <summary>The categories of the loggers that logged something.</summary>
    public IReadOnlyCollection<string> Categories => [.. _categories.Keys];

    /// <summary>Completes when an event with <paramref name="eventId"/> is logged (from now or before).</summary>
    public Task WhenLogged(int eventId) => _waiters.GetOrAdd(eventId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(RecordingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner._categories.TryAdd(category, true);
            owner._events.Enqueue((eventId, logLevel, formatter(state, exception)));
            owner._waiters.GetOrAdd(eventId.Id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }
}
