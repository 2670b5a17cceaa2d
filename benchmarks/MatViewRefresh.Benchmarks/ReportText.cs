using System.Globalization;

namespace MatViewRefresh.Benchmarks;

/// <summary>What every report command prints the same way: the machine it ran on and its figures.</summary>
internal static class ReportText
{
    /// <summary>The CPU model from /proc/cpuinfo.</summary>
    public static string Cpu()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg (more than the core count: other work competed).</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    public static string Ms(double ms) => ms.ToString("0.000", CultureInfo.InvariantCulture) + " ms";

    public static string Signed(double ms) => ms.ToString("+0.000;−0.000;0.000", CultureInfo.InvariantCulture);
}
