using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>The single-setting rules of <see cref="MatViewRefreshOptions"/> (its <c>[SettingRange]</c> attributes), source-generated: no reflection.</summary>
[OptionsValidator]
internal sealed partial class MatViewRefreshOptionsDataValidator : IValidateOptions<MatViewRefreshOptions>
{
}
