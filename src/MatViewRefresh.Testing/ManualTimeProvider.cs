namespace MatViewRefresh.Testing;

/// <summary>
/// A <see cref="TimeProvider"/> whose clock moves only when told to. <see cref="Advance"/> fires the timers that
/// fall due, in due-time order (ties in the order they were armed), each with the clock set to its due time —
/// so tests of timers and debouncing are deterministic and never sleep.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly object _gate = new();
    // Armed timers by (due, arming order): Advance takes the first one until none is due.
    private readonly SortedSet<ManualTimer> _armed = new(Comparer<ManualTimer>.Create(static (a, b) =>
    {
        var byDue = a.Due!.Value.CompareTo(b.Due!.Value);
        return byDue != 0 ? byDue : a.Sequence.CompareTo(b.Sequence);
    }));
    private DateTimeOffset _now;
    private long _sequence;

    /// <summary>Creates a clock starting at <paramref name="start"/> (default 2025-01-01T00:00:00Z).</summary>
    public ManualTimeProvider(DateTimeOffset? start = null) => _now = (start ?? new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)).ToUniversalTime();

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>How many timers are armed.</summary>
    public int ArmedTimers
    {
        get
        {
            lock (_gate)
            {
                return _armed.Count;
            }
        }
    }

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    /// <inheritdoc />
    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new ManualTimer(this, callback, state);
        lock (_gate)
        {
            timer.Arm(dueTime, period);
        }

        return timer;
    }

    /// <summary>Moves the clock forward by <paramref name="by"/>, firing every timer that falls due on the way.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="by"/> is negative.</exception>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        DateTimeOffset target;
        lock (_gate)
        {
            target = _now + by;
        }

        AdvanceTo(target);
    }

    /// <summary>Moves the clock forward to <paramref name="target"/>, firing every timer that falls due on the way.</summary>
    public void AdvanceTo(DateTimeOffset target)
    {
        while (true)
        {
            ManualTimer? next;
            lock (_gate)
            {
                next = _armed.Count > 0 && _armed.Min!.Due <= target ? _armed.Min : null;
                if (next is null)
                {
                    if (target > _now)
                    {
                        _now = target;
                    }

                    return;
                }

                if (next.Due > _now)
                {
                    _now = next.Due.Value;
                }

                _armed.Remove(next);
                if (next.Period is { } period)
                {
                    next.Due = _now + period;
                    next.Sequence = ++_sequence;
                    _armed.Add(next);
                }
                else
                {
                    next.Due = null;
                }
            }

            next.Fire();
        }
    }

    /// <summary>Fires the timers already due (<c>Advance(TimeSpan.Zero)</c>).</summary>
    public void FireDue() => Advance(TimeSpan.Zero);

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public TimeSpan? Period { get; private set; }

        public long Sequence { get; set; }

        private bool _disposed;

        /// <summary>(Re)arms the timer; the caller holds the owner's lock.</summary>
        public void Arm(TimeSpan dueTime, TimeSpan period)
        {
            if (Due is not null)
            {
                owner._armed.Remove(this);
            }

            Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
            Period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? null : period;
            Sequence = ++owner._sequence;
            if (Due is not null)
            {
                owner._armed.Add(this);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                if (_disposed)
                {
                    return false;
                }

                Arm(dueTime, period);
                return true;
            }
        }

        /// <summary>
        /// Runs the callback as a real timer would: with no <see cref="SynchronizationContext"/>, so continuations of
        /// what it completes run inline (a test framework's context would otherwise defer them to other threads).
        /// </summary>
        public void Fire()
        {
            var context = SynchronizationContext.Current;
            SynchronizationContext.SetSynchronizationContext(null);
            try
            {
                callback(state);
            }
            finally
            {
                SynchronizationContext.SetSynchronizationContext(context);
            }
        }

        public void Dispose()
        {
            lock (owner._gate)
            {
                _disposed = true;
                if (Due is not null)
                {
                    owner._armed.Remove(this);
                    Due = null;
                }
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
