using System.Reflection;

namespace MatViewRefresh.Tests;

/// <summary>The public surface stays small: implementations are internal and sealed (PublicAPI.*.txt tracks the rest at build time).</summary>
public sealed class PublicSurfaceTests
{
    [Fact]
    public void Every_implementation_of_a_public_interface_is_internal_and_sealed()
    {
        var assembly = typeof(IMaterializedViewRefresher).Assembly;
        var contracts = assembly.GetExportedTypes().Where(t => t.IsInterface).ToHashSet();

        var implementations = assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && !t.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute)))
            .Where(t => t.GetInterfaces().Any(contracts.Contains))
            .ToList();

        Assert.NotEmpty(implementations);
        Assert.All(implementations, t => Assert.True(!t.IsVisible && t.IsSealed, $"{t.FullName} should be internal sealed"));
    }
}
