using System.CommandLine.Parsing;
using System.Globalization;

namespace MatViewRefresh.Cli;

/// <summary>Whole-number options: a bad or out-of-range value is a parse error naming the option and the value.</summary>
internal static class Numbers
{
    public static Func<ArgumentResult, int?> Between(int min, int max) => result =>
    {
        var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        var option = result.Parent is OptionResult o ? o.Option.Name : "value";
        if (!int.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
        {
            result.AddError($"{option} expects a whole number, not '{token}'.");
            return null;
        }

        if (n < min || n > max)
        {
            result.AddError($"{option} must be between {min} and {max}, not {n}.");
            return null;
        }

        return n;
    };
}
