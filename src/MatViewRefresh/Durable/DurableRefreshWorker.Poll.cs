using Npgsql;
using NpgsqlTypes;

namespace MatViewRefresh;

/// <summary>The worker's reading of the queue: which targets are due, and starting them alone or in groups.</summary>
internal sealed partial class DurableRefreshWorker
{
    /// <summary>
    /// How many due targets one read of the queue fetches: enough for every run slot several times over, since the queue is read
    /// again only after the last read's cost allows. Grouped runs re-check each target is still due when they claim it, so a
    /// long list going stale costs a lookup, not an early run.
    /// </summary>
    private int ReadLimit => Math.Max(_durable.MaxConcurrentRuns * (_durable.MaxTargetsPerRun > 1 ? _durable.MaxTargetsPerRun * 4 : 32), 256);

    /// <summary>
    /// How many targets not yet due one read lists at most (the read-ahead, <see cref="ReadAhead"/>), apart from the due ones
    /// (<see cref="ReadLimit"/>): a due list cut short waits for the next read, but an upcoming list cut short leaves the targets
    /// due late in the read-ahead to be found overdue by a later read — under load, most of the lag tail.
    /// </summary>
    private int UpcomingLimit => ReadLimit * 4;

    /// <summary>
    /// Starts the due targets this instance has room for; returns how long to wait before looking again. One query fetches a
    /// batch of due targets (earliest first; without shares shuffled within blocks, so instances do not all try the same one first); function
    /// and window targets are run in groups of up to MaxTargetsPerRun (one claim, one transaction), views and the rest alone.
    /// Finishing runs take the next from the batch, and the queue is read again when the batch is used up or PollInterval has
    /// passed — but never sooner than four times what the last read took: under load it runs a few times a second, not once per run.
    /// Targets the last read saw coming due (<see cref="ReadAhead"/>), and those a grouped run found requested again while it ran
    /// (<see cref="DurableSql.NextDue"/>), join the batch when due.
    /// </summary>
    private async Task<TimeSpan> PollAsync(CancellationToken cancellationToken)
    {
        var free = _durable.MaxConcurrentRuns - Volatile.Read(ref _active);
        if (free <= 0)
        {
            return _durable.PollInterval; // a finishing run wakes the loop
        }

        // Targets of failed groups (and failing ones set aside) first, each alone.
        free = LaunchAlone(free, cancellationToken);
        var groups = _refresher is MaterializedViewRefresher { RunsInCallerTransactions: true } refresher && _durable.MaxTargetsPerRun > 1 ? refresher : null;
        TakeUpcoming(groups is not null);

        var wait = _durable.PollInterval;
        var since = _time.GetElapsedTime(_lastPoll);
        // One read slowed by a stall must not stop reading for long; reads slow on average (a large backlog) are spaced all the same.
        var spacing = Sooner(_lastPollTook * ReadSpacing, ReadSpacingCap);
        if (_ready.Count == 0 && since < spacing)
        {
            // Newly due targets wait a little (reading them at once would take the CPU the runs need), except those the last
            // read saw coming.
            return Sooner(spacing - since, UntilUpcoming());
        }

        if (_ready.Count == 0 || (since >= _durable.PollInterval && since >= spacing))
        {
            wait = await ReadDueAsync(cancellationToken).ConfigureAwait(false);
        }

        var groupSize = Math.Clamp(Math.Max((_ready.Count + free - 1) / free, MinGroupSize()), 1, _durable.MaxTargetsPerRun);
        var group = new List<(string Key, DurableRegistration Registration)>();
        var gathering = new HashSet<string>(StringComparer.Ordinal);
        var deferred = new List<string>();
        var skipped = false;
        while (free > 0 && _ready.TryDequeue(out var target))
        {
            if (_running.ContainsKey(target) || _notBefore.ContainsKey(target) || _aloneKeys.ContainsKey(target))
            {
                continue; // running, held back, or waiting to run alone
            }

            if (_queue.Resolve(target) is not { } registration)
            {
                Unresolved(target);
                skipped = true;
                continue;
            }

            if (groups is null || registration.Target.Kind is not (RefreshTargetKind.Function or RefreshTargetKind.Window) || !Groupable(target))
            {
                if (free == 1 && group.Count > 0)
                {
                    deferred.Add(target); // the last free run goes to the group being gathered; this one is first next time
                    continue;
                }

                Launch(target, registration, cancellationToken);
                free--;
                continue;
            }

            if (Slow(target))
            {
                // Measured slow lately: a group of its own, so that it refreshes beside the others instead of after them.
                if (free == 1 && group.Count > 0)
                {
                    deferred.Add(target);
                    continue;
                }

                LaunchGroup([(target, registration)], groups, cancellationToken);
                free--;
                continue;
            }

            if (!gathering.Add(target))
            {
                continue; // listed twice (by a read and by its last run): once is enough
            }

            group.Add((target, registration));
            if (group.Count == groupSize)
            {
                LaunchGroup(group, groups, cancellationToken);
                group = [];
                free--;
            }
        }

        if (group.Count > 0)
        {
            LaunchGroup(group, groups!, cancellationToken);
        }

        if (deferred.Count > 0)
        {
            var rest = _ready.ToArray();
            _ready.Clear();
            foreach (var target in deferred.Concat(rest))
            {
                _ready.Enqueue(target);
            }
        }

        return Sooner(_ready.Count > 0 ? _durable.PollInterval : skipped && free > 0 ? TimeSpan.Zero : wait, UntilUpcoming());
    }

    /// <summary>
    /// Moves the targets seen coming (by the last read, or by a grouped run just before its commit), and now due, to the ready
    /// list: earliest due first with shares (no other worker lists them before they are long overdue), else in random order
    /// (instances taking their targets at the same moment seldom try the same one first). Only targets that will run in a group: a grouped claim
    /// re-checks that each target is due (a request since the read may have moved its settle delay; another instance may have
    /// set its retry time), a single run's claim does not — a view, say, waits for the read that finds it due.
    /// </summary>
    private void TakeUpcoming(bool grouping)
    {
        while (_nextDue.TryDequeue(out var followUp))
        {
            _upcoming.Enqueue(followUp.Target, followUp.Due);
        }

        var now = _time.GetTimestamp();
        var taken = new List<string>();
        while (_upcoming.TryPeek(out var target, out var due) && due <= now)
        {
            _upcoming.Dequeue();
            if (grouping && _queue.Resolve(target) is { Target.Kind: RefreshTargetKind.Function or RefreshTargetKind.Window } && Groupable(target))
            {
                taken.Add(target);
            }
        }

        foreach (var target in _shares ? taken : [.. taken.OrderBy(_ => _random())])
        {
            _ready.Enqueue(target);
        }
    }

    /// <summary>
    /// How long until the loop should take upcoming targets: the first one's due time plus <see cref="UpcomingBatch"/>, so that
    /// targets coming due close together start in one group, not one group each.
    /// </summary>
    private TimeSpan UntilUpcoming() =>
        _upcoming.TryPeek(out _, out var due)
            ? TimeSpan.FromSeconds(Math.Max(0, due - _time.GetTimestamp()) / (double)_time.TimestampFrequency) + UpcomingBatch(_durable.PollInterval)
            : TimeSpan.MaxValue;

    /// <summary>How long an upcoming target, once due, waits for others to join its group: 100 ms, or half the poll interval if shorter.</summary>
    internal static TimeSpan UpcomingBatch(TimeSpan pollInterval) => Sooner(TimeSpan.FromMilliseconds(100), pollInterval / 2);

    private static TimeSpan Sooner(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// How far apart reads of the queue can be: <see cref="MaxReadSpacing"/>, or more when they are that slow on average. Also
    /// how far ahead a read looks (<see cref="ReadAhead"/>).
    /// </summary>
    private TimeSpan ReadSpacingCap => Max(MaxReadSpacing, _usualPollTook * ReadSpacing);

    /// <summary>
    /// How far ahead a read of the queue looks: targets due within this time are started when due, without another read —
    /// as far as reads can be apart.
    /// </summary>
    private TimeSpan ReadAhead => ReadSpacingCap;

    /// <summary>
    /// Reads a batch of due targets into the ready list, and those due within <see cref="ReadAhead"/> into the upcoming list;
    /// returns the time until the next one after them (at most PollInterval).
    /// </summary>
    private async Task<TimeSpan> ReadDueAsync(CancellationToken cancellationToken)
    {
        _lastPoll = _time.GetTimestamp();
        var now = _lastPoll;
        foreach (var (key, until) in _notBefore)
        {
            if (until <= now)
            {
                _notBefore.TryRemove(new KeyValuePair<string, long>(key, until));
            }
        }

        // Running and skipped targets are passed over here, with the limit raised to match: comparing each candidate with
        // hundreds of them in SQL would cost more than the query itself. Running means running when the read starts (runs
        // start only from this loop, so none starts during the read), even if the run has ended by the time the rows arrive:
        // the read's snapshot may predate its claim, and list the target due although the run just covered (and deleted) its
        // requests.
        var runningAtStart = new HashSet<string>(_running.Keys, StringComparer.Ordinal);
        var due = new List<string>();
        var coming = new List<(double InMs, string Target)>();
        var ahead = ReadAhead;
        var wait = _durable.PollInterval;
        var shares = _shares;
        var note = shares && NoteNow();
        await using (var command = _dataSource.Value.CreateCommand(shares ? _sql.Due : _sql.DueAll))
        {
            AddTiming(command.Parameters);
            command.Parameters.Add(new() { Value = ReadLimit + runningAtStart.Count + _notBefore.Count });
            if (shares)
            {
                command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Uuid, Value = _workerId });
                command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = ShareLiveness(_durable.PollInterval) });
                command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = StealAfter(_durable.PollInterval) });
                command.Parameters.Add(new() { NpgsqlDbType = NpgsqlDbType.Boolean, Value = note });
            }

            command.Parameters.Add(new() { Value = UpcomingLimit + runningAtStart.Count + _notBefore.Count });

            NpgsqlDataReader reader;
            try
            {
                reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (shares && SharesUnavailable(e))
            {
                return TimeSpan.Zero; // read again at once, without shares
            }

            if (note)
            {
                Noted();
            }

            await using var _ = reader;
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var dueInMs = reader.GetDouble(1);
                if (dueInMs > ahead.TotalMilliseconds)
                {
                    var until = TimeSpan.FromMilliseconds(dueInMs);
                    wait = until < wait ? until : wait;
                    break;
                }

                var target = reader.GetString(0);
                if (!_notBefore.ContainsKey(target) && !runningAtStart.Contains(target))
                {
                    if (dueInMs > 0)
                    {
                        coming.Add((dueInMs, target));
                    }
                    else
                    {
                        due.Add(target);
                    }
                }
            }
        }

        // Targets due before the next read are started when due, without waiting for it: their due time was measured when the
        // read ran, so counting it from now starts them late by at most the read's duration, never early (a claim re-checks
        // that each is due, and one that is not — a new request moved its settle delay — waits for a later read).
        var readEnd = _time.GetTimestamp();
        _upcoming.Clear();
        foreach (var (inMs, target) in coming)
        {
            _upcoming.Enqueue(target, readEnd + (long)(inMs / 1000 * _time.TimestampFrequency));
        }

        _lastPollTook = _time.GetElapsedTime(_lastPoll);
        _usualPollTook = _usualPollTook == TimeSpan.Zero ? _lastPollTook : (_usualPollTook * 0.8) + (_lastPollTook * 0.2);

        // Earliest due first. Without shares, shuffled within blocks of one round of runs: instances reading the same list then
        // seldom try the same targets at once, and no due target waits behind later ones (a whole-list shuffle left some at the
        // back of every read under load: a long tail of lag). With shares the list is this worker's own: no shuffle, so that
        // under load the targets waiting longest go first.
        _ready.Clear();
        var block = _durable.MaxConcurrentRuns * Math.Max(1, _durable.MaxTargetsPerRun);
        foreach (var target in shares ? due : [.. due.Select((t, i) => (t, i)).OrderBy(x => x.i / block).ThenBy(_ => _random()).Select(x => x.t)])
        {
            _ready.Enqueue(target);
        }

        return wait;
    }
}
