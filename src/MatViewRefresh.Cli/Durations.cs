using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MatViewRefresh.Cli;

/// <summary>Durations as people write them on a command line: <c>500ms</c>, <c>5s</c>, <c>10m</c>, <c>1h</c>, <c>2d</c>, <c>1h30m</c>, or <c>00:05:00</c>.</summary>
internal static partial class Durations
{
    public const string Help = "a duration: 500ms, 5s, 10m, 1h, 2d, 1h30m, 00:05:00 or 0";

    [GeneratedRegex(@"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$", RegexOptions.CultureInvariant)]
    private static partial Regex Whole();

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", RegexOptions.CultureInvariant)]
    private static partial Regex Part();

    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        text = text.Trim().ToLowerInvariant();
        if (text.Length == 0)
        {
            return false;
        }

        if (text == "0")
        {
            return true;
        }

        if (Whole().IsMatch(text))
        {
            double ms = 0;
            foreach (Match m in Part().Matches(text))
            {
                var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                ms += m.Groups[2].Value switch
                {
                    "ms" => n,
                    "s" => n * 1000,
                    "m" => n * 60_000,
                    "h" => n * 3_600_000,
                    "d" => n * 86_400_000,
                    _ => n * 7 * 86_400_000,
                };
            }

            if (ms > TimeSpan.FromDays(36_600).TotalMilliseconds)
            {
                return false;
            }

            value = TimeSpan.FromMilliseconds(ms);
            return true;
        }

        return text.Contains(':', StringComparison.Ordinal)
            && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    /// <summary>A System.CommandLine parser for a duration option: a bad value is a parse error naming the option and the value.</summary>
    public static TimeSpan? Parse(ArgumentResult result)
    {
        var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        if (TryParse(token, out var value))
        {
            return value;
        }

        var option = result.Parent is OptionResult o ? o.Option.Name : "duration";
        result.AddError($"Invalid duration '{token}' for {option}: expected {Help}.");
        return null;
    }

    /// <summary>Short human form: 850ms, 1.2s, 3m 05s, 2h 10m, 3d 4h.</summary>
    public static string Format(TimeSpan? span)
    {
        if (span is not { } t)
        {
            return "-";
        }

        if (t < TimeSpan.Zero)
        {
            t = TimeSpan.Zero;
        }

        return t.TotalSeconds switch
        {
            < 1 => $"{t.TotalMilliseconds:0}ms",
            < 60 => $"{t.TotalSeconds:0.0}s",
            < 3600 => $"{(int)t.TotalMinutes}m {t.Seconds:00}s",
            < 86400 => $"{(int)t.TotalHours}h {t.Minutes:00}m",
            _ => $"{(int)t.TotalDays}d {t.Hours}h",
        };
    }

    /// <summary>A size in bytes as people read it: 8.0 kB, 1.2 MB.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} kB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.0} MB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.0} GB",
    };
}
