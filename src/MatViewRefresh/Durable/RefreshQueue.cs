using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>Appends durable requests in the caller's transaction, and remembers which targets this instance can run.</summary>
internal sealed class RefreshQueue : IRefreshQueue
{
    /// <summary>Targets remembered at enqueue time, at most; beyond, register them (or use a resolver) to run them here.</summary>
    internal const int MaxRememberedTargets = 100_000;

    private readonly ConcurrentDictionary<string, DurableRegistration> _registered = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DurableRegistration> _remembered = new(StringComparer.Ordinal);
    private readonly RefreshLogSchema _schema;
    private readonly MatViewRefreshOptions _options;
    private readonly ILogger _logger;
    private readonly string _insert;
    private readonly string _insertAndNotify;
    private readonly string _insertMany;
    private readonly string _insertManyAndNotify;
    private int _rememberedFullLogged;

    public RefreshQueue(RefreshLogSchema schema, IOptions<MatViewRefreshOptions> options, ILogger<RefreshQueue> logger)
    {
        _schema = schema;
        _options = options.Value;
        _logger = logger;
        Channel = ChannelOf(_options.Schema);
        var table = SqlIdentifier.Quote(_options.Schema) + ".refresh_requests";
        _insert = $"INSERT INTO {table} (target, first_day, last_day) VALUES ($1, $2, $3)";
        _insertAndNotify = $"WITH r AS ({_insert} RETURNING 1) SELECT pg_notify($4, '') FROM r";
        _insertMany = $"INSERT INTO {table} (target) SELECT unnest($1::text[])";
        _insertManyAndNotify = $"WITH r AS ({_insertMany} RETURNING 1) SELECT pg_notify($2, '') FROM (SELECT 1 FROM r LIMIT 1) n";
    }

    /// <summary>The NOTIFY channel of the queue in this schema.</summary>
    public string Channel { get; }

    /// <summary><c>&lt;schema&gt;.requests</c>, or a hash of it when that is longer than an identifier may be.</summary>
    public static string ChannelOf(string schema)
    {
        var channel = schema + ".requests";
        return System.Text.Encoding.UTF8.GetByteCount(channel) <= 63 ? channel
            : "matview_refresh." + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(schema)))[..16] + ".requests";
    }

    public Task EnqueueAsync(RefreshTarget target, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        return InsertAsync(Checked(target), null, null, OpenConnection(transaction), transaction, cancellationToken);
    }

    public async Task EnqueueAsync(IEnumerable<RefreshTarget> targets, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(transaction);
        var texts = new List<string>();
        foreach (var target in targets)
        {
            if (target is null)
            {
                throw new ArgumentException($"Target {texts.Count + 1} of the batch is null; nothing was enqueued.", nameof(targets));
            }

            var resolved = Checked(target);
            var text = resolved.ToString();
            Remember(text, resolved);
            texts.Add(text);
        }

        var connection = OpenConnection(transaction);
        if (texts.Count == 0)
        {
            return;
        }

        await _schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        var notify = _options.Durable.ListenNotify;
        await using var command = new NpgsqlCommand(notify ? _insertManyAndNotify : _insertMany, connection, transaction);
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = texts });
        if (notify)
        {
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = Channel });
        }

        if (_options.PrepareStatements)
        {
            await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task EnqueueAsync(RefreshTarget target, NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection.FullState != System.Data.ConnectionState.Open)
        {
            throw new ArgumentException($"The connection is {connection.FullState}, not open: open it before enqueuing a refresh of {target}.", nameof(connection));
        }

        return InsertAsync(Checked(target), null, null, connection, null, cancellationToken);
    }

    public Task EnqueueDaysAsync(RefreshTarget target, DateOnly firstDay, DateOnly lastDay, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        target = Checked(target);
        if (target.Kind != RefreshTargetKind.Window)
        {
            throw new ArgumentException($"{target} is a {target.Kind} target: only a window target (RefreshTarget.Window) refreshes given days.", nameof(target));
        }

        if (lastDay < firstDay)
        {
            throw new ArgumentException($"The last day {lastDay:yyyy-MM-dd} is before the first day {firstDay:yyyy-MM-dd} (refresh of {target}).", nameof(lastDay));
        }

        if (lastDay == DateOnly.MaxValue)
        {
            throw new ArgumentException(
                $"The last day {lastDay:yyyy-MM-dd} is the last representable day: a window refresh ends the day after its last day. Enqueue the target without days for a refresh as configured (refresh of {target}).",
                nameof(lastDay));
        }

        return InsertAsync(target, firstDay, lastDay, OpenConnection(transaction), transaction, cancellationToken);
    }

    public void Register(RefreshTarget target, RefreshOptions? options = null)
    {
        target = Checked(target);
        _registered[target.ToString()] = new DurableRegistration(target, options);
    }

    /// <summary>
    /// Registers a target this process watches (<see cref="IRefreshWatcher.WatchAsync"/>) so that its worker can run the
    /// requests the capture triggers write, unless the app registered it already (its options win).
    /// </summary>
    internal void RegisterWatched(RefreshTarget target, RefreshOptions? options)
    {
        if (target.Kind != RefreshTargetKind.MaterializedView)
        {
            _registered.TryAdd(target.ToString(), new DurableRegistration(target, options));
        }
    }

    /// <summary>The target (and its registered options) named by a request's text; <see langword="null"/> when this instance cannot run it.</summary>
    public DurableRegistration? Resolve(string text)
    {
        if (_registered.TryGetValue(text, out var registration) || _remembered.TryGetValue(text, out registration))
        {
            return registration;
        }

        if (_options.Durable.Resolver?.Invoke(text) is { } resolved)
        {
            return new DurableRegistration(resolved.WithDefaultSchema(_options.DefaultSchema), null);
        }

        // A view needs no registration: its name is the text. (A window target's text is a table name too: the refresher
        // then finds no such view, and the worker reports the target as unresolved.)
        try
        {
            return new DurableRegistration(RefreshTarget.View(QualifiedName.Parse(text, _options.DefaultSchema)), null);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private RefreshTarget Checked(RefreshTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return target.WithDefaultSchema(_options.DefaultSchema);
    }

    private static NpgsqlConnection OpenConnection(NpgsqlTransaction transaction)
    {
        const string Completed = "The transaction is completed (committed or rolled back): enqueue inside an open transaction.";
        var connection = transaction.Connection ?? throw new ArgumentException(Completed, nameof(transaction));
        try
        {
            // Npgsql refuses a completed transaction here (its IsCompleted is not public); no I/O.
            using var probe = new NpgsqlCommand(null, connection, transaction);
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException(Completed, nameof(transaction), e);
        }

        return connection;
    }

    private async Task InsertAsync(RefreshTarget target, DateOnly? firstDay, DateOnly? lastDay, NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        var text = target.ToString();
        Remember(text, target);
        await _schema.EnsureIfAutomaticAsync(cancellationToken).ConfigureAwait(false);
        var notify = _options.Durable.ListenNotify;
        await using var command = new NpgsqlCommand(notify ? _insertAndNotify : _insert, connection, transaction);
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = text });
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Date, Value = firstDay is { } f ? f : DBNull.Value });
        command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Date, Value = lastDay is { } l ? l : DBNull.Value });
        if (notify)
        {
            command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Text, Value = Channel });
        }

        if (_options.PrepareStatements)
        {
            await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Window and function targets enqueued here can be run here without registration (views resolve from their name).</summary>
    private void Remember(string text, RefreshTarget target)
    {
        if (target.Kind == RefreshTargetKind.MaterializedView || _registered.ContainsKey(text) || _remembered.ContainsKey(text))
        {
            return;
        }

        if (_remembered.Count >= MaxRememberedTargets)
        {
            if (Interlocked.Exchange(ref _rememberedFullLogged, 1) == 0)
            {
                Log.DurableRememberedFull(_logger, MaxRememberedTargets);
            }

            return;
        }

        _remembered.TryAdd(text, new DurableRegistration(target, null));
    }
}

/// <summary>A target the worker can run, with the options of its runs (<see langword="null"/>: the configured defaults).</summary>
internal sealed record DurableRegistration(RefreshTarget Target, RefreshOptions? Options);
