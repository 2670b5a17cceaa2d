using System.Collections.Concurrent;

namespace MatViewRefresh;

/// <summary>
/// How big the worker's groups are (<see cref="DurableRefreshOptions.MaxTargetsPerRun"/> bounds them): cheap targets by their
/// recent cost, so that they share a claim and transaction rather than take one each; a target measured slow, alone.
/// </summary>
internal sealed partial class DurableRefreshWorker
{
    // What one target of a group has taken to refresh lately, in milliseconds (a moving average; 0: not measured yet).
    private double _targetCostMs;

    /// <summary>Targets refreshed in groups cost about this much each, together, before a group is spread over the free runs.</summary>
    internal static readonly TimeSpan GroupSpreadBelow = TimeSpan.FromMilliseconds(50);

    // Targets whose refresh took longer than SlowTarget in a group lately (until when they count as slow, monotonic ticks):
    // each gets a group of its own. Bounded.
    private readonly ConcurrentDictionary<string, long> _slow = new(StringComparer.Ordinal);
    private static readonly TimeSpan SlowFor = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A target whose refresh in a group took longer than this gets a group of its own for a while (<see cref="SlowFor"/>): well
    /// above what a cheap target takes even on a loaded server (one marked slow by a passing stall would cost a group each).
    /// </summary>
    internal static readonly TimeSpan SlowTarget = TimeSpan.FromMilliseconds(250);

    private void NoteTargetCost(TimeSpan refreshes, List<GroupMember> members)
    {
        var fast = 0;
        var fastMs = refreshes.TotalMilliseconds;
        foreach (var member in members)
        {
            if (member.Execution?.ServerDuration is { } took && took > GroupSpreadBelow)
            {
                fastMs -= took.TotalMilliseconds;
                if (took <= SlowTarget)
                {
                    continue;
                }

                if (_slow.Count < MaxRemembered)
                {
                    _slow[member.Key] = _time.GetTimestamp() + (long)(SlowFor.TotalSeconds * _time.TimestampFrequency);
                }
            }
            else
            {
                fast++;
                _slow.TryRemove(member.Key, out _);
            }
        }

        if (fast > 0)
        {
            var each = Math.Max(0, fastMs) / fast;
            var usual = Volatile.Read(ref _targetCostMs);
            Volatile.Write(ref _targetCostMs, usual == 0 ? each : (usual * 0.8) + (each * 0.2));
        }
    }

    private bool Slow(string key) =>
        _slow.TryGetValue(key, out var until) && (until > _time.GetTimestamp() || !_slow.TryRemove(new KeyValuePair<string, long>(key, until)));

    /// <summary>
    /// The smallest group the loop makes when due targets are fewer than its free runs could take: as many targets as refresh
    /// together in about <see cref="GroupSpreadBelow"/> (by the recent cost of targets under it), so that cheap targets share
    /// one claim and transaction instead of a group each; before any was measured, they are spread over the free runs. A
    /// target measured slower than <see cref="SlowTarget"/> gets a group of its own, to refresh beside the others.
    /// </summary>
    private int MinGroupSize() => MinGroupSize(Volatile.Read(ref _targetCostMs), _durable.MaxTargetsPerRun);

    internal static int MinGroupSize(double targetCostMs, int maxTargetsPerRun) =>
        targetCostMs <= 0 ? 1 : (int)Math.Clamp(GroupSpreadBelow.TotalMilliseconds / targetCostMs, 1, maxTargetsPerRun);
}
