using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace MatViewRefresh;

/// <summary>
/// <see cref="RangeAttribute"/> whose message names the setting by its configuration path and the bad value
/// (<c>MatViewRefresh:MaxParallelism is 0; it must be between 1 and 64.</c>), as every options message of the library does.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class SettingRangeAttribute : RangeAttribute
{
    public SettingRangeAttribute(int minimum, int maximum)
        : base(minimum, maximum)
    {
    }

    public SettingRangeAttribute(Type type, string minimum, string maximum)
        : base(type, minimum, maximum)
    {
        ParseLimitsInInvariantCulture = true;
        ConvertValueInInvariantCulture = true;
    }

    /// <summary>The configuration section of the options (<c>MatViewRefresh</c>, <c>MatViewRefresh:Debounce</c>).</summary>
    public string Section { get; set; } = MatViewRefreshOptions.SectionName;

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        if (IsValid(value))
        {
            return ValidationResult.Success;
        }

        var member = validationContext.MemberName ?? validationContext.DisplayName;
        var text = Convert.ToString(value, CultureInfo.InvariantCulture);
        // No member names: the message already names the setting by its configuration path.
        return new ValidationResult($"{Section}:{member} is {text}; it must be between {Format(Minimum)} and {Format(Maximum)}.");
    }

    private static string? Format(object limit) => Convert.ToString(limit, CultureInfo.InvariantCulture);
}
