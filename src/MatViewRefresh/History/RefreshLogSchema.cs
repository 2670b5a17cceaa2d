using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh;

/// <summary>Creates the refresh log schema from the shipped script: once per process, and again when asked or found damaged.</summary>
internal sealed class RefreshLogSchema(RefreshDataSource dataSource, IOptions<MatViewRefreshOptions> options, ILogger<RefreshLogSchema> logger)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile bool _ensured;

    /// <summary>The shipped scripts for <paramref name="schema"/>: the log schema, then change capture (each its own transaction).</summary>
    public static string Script(string schema) =>
        Resource("MatViewRefresh.schema.sql", schema) + "\n" + Resource("MatViewRefresh.change_capture.sql", schema);

    /// <summary>An embedded script with <c>"matview_refresh"</c> replaced by <paramref name="schema"/>.</summary>
    private static string Resource(string name, string schema)
    {
        using var stream = typeof(RefreshLogSchema).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded script {name} is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Replace("\"matview_refresh\"", SqlIdentifier.Quote(schema), StringComparison.Ordinal);
    }

    /// <summary>
    /// Runs the script unless it already ran in this process; with <paramref name="force"/>, runs it again (idempotent),
    /// so that a damaged log (a dropped table or function) is re-created.
    /// </summary>
    public async Task EnsureAsync(CancellationToken cancellationToken, bool force = false)
    {
        if (_ensured && !force)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_ensured || force)
            {
                await RunAsync(cancellationToken).ConfigureAwait(false);
                _ensured = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Ensures the schema when <see cref="MatViewRefreshOptions.AutoCreateSchema"/> is on.</summary>
    public Task EnsureIfAutomaticAsync(CancellationToken cancellationToken) =>
        options.Value.AutoCreateSchema ? EnsureAsync(cancellationToken) : Task.CompletedTask;

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var schema = options.Value.Schema;
        await using var connection = await dataSource.Value.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Script(schema), connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        Log.SchemaEnsured(logger, schema);
    }
}
