using MatViewRefresh.Testing;

namespace MatViewRefresh.Tests;

/// <summary>The sweep of abandoned throwaway clusters must never take a live one, even when its owner's pid means nothing here.</summary>
public sealed class ThrowawayPostgresSweepTests : IDisposable
{
    private readonly string _base = Path.Combine(Path.GetTempPath(), "mvr-sweep-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private string Cluster(string name, int ownerPid)
    {
        var folder = Path.Combine(_base, "cluster-" + name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "owner.pid"), ownerPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return folder;
    }

    [Fact]
    public void A_cluster_whose_lock_is_held_is_kept_even_when_its_owner_pid_is_not_a_process_here()
    {
        // Another PID namespace (a container or sandbox sharing /tmp): its pid is not a process we can see.
        var live = Cluster("live", ownerPid: int.MaxValue - 1);
        using var held = ThrowawayPostgres.HoldOwnerLock(live);
        var abandoned = Cluster("abandoned", ownerPid: int.MaxValue - 1);
        ThrowawayPostgres.HoldOwnerLock(abandoned).Dispose(); // its owner died: the kernel released the lock

        ThrowawayPostgres.RemoveAbandonedClusters(_base);

        Assert.True(Directory.Exists(live));
        Assert.False(Directory.Exists(abandoned));
    }
}
