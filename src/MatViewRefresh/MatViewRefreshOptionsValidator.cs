using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>
/// The rules of <see cref="MatViewRefreshOptions"/> that compare settings or parse them (identifiers, time zones); single-setting
/// ranges are <see cref="MatViewRefreshOptionsDataValidator"/>'s. Every message names the bad setting and its value.
/// </summary>
internal sealed class MatViewRefreshOptionsValidator : IValidateOptions<MatViewRefreshOptions>
{
    public ValidateOptionsResult Validate(string? name, MatViewRefreshOptions options)
    {
        var failures = new List<string>();
        var p = MatViewRefreshOptions.SectionName + ":";

        CheckIdentifier(options.Schema, p + nameof(options.Schema), failures);
        CheckIdentifier(options.DefaultSchema, p + nameof(options.DefaultSchema), failures);
        if (!Enum.IsDefined(options.DefaultMode))
        {
            failures.Add($"{p}{nameof(options.DefaultMode)} is {options.DefaultMode}; use Auto, Full or Concurrent.");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            failures.Add($"{p}{nameof(options.RetryMaxDelay)} ({options.RetryMaxDelay}) is shorter than {p}{nameof(options.RetryBaseDelay)} ({options.RetryBaseDelay}).");
        }

        if (options.SlowThreshold < options.FastThreshold)
        {
            failures.Add($"{p}{nameof(options.SlowThreshold)} ({options.SlowThreshold}) is shorter than {p}{nameof(options.FastThreshold)} ({options.FastThreshold}).");
        }

        if (options.Randomizer is null)
        {
            failures.Add($"{p}{nameof(options.Randomizer)} is null.");
        }

        ValidateDebounce(options.Debounce, p + nameof(options.Debounce) + ":", failures);
        if (options.Durable is null)
        {
            failures.Add($"{p}{nameof(options.Durable)} is null.");
        }
        else if (string.IsNullOrWhiteSpace(options.Durable.Trigger))
        {
            failures.Add($"{p}{nameof(options.Durable)}:{nameof(options.Durable.Trigger)} is empty.");
        }
        if (options.Schedules is null)
        {
            failures.Add($"{p}{nameof(options.Schedules)} is null.");
        }
        else
        {
            foreach (var (scheduleName, schedule) in options.Schedules)
            {
                ScheduleDefinition.Create(scheduleName, schedule, failures);
            }
        }

        WatchHostedService.Validate(options.Watch, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateDebounce(RefreshDebounceOptions? d, string p, List<string> failures)
    {
        if (d is null)
        {
            failures.Add($"{p.TrimEnd(':')} is null.");
            return;
        }

        if (d.DelayMax < d.DelayMin)
        {
            failures.Add($"{p}{nameof(d.DelayMax)} ({d.DelayMax}) is shorter than {p}{nameof(d.DelayMin)} ({d.DelayMin}).");
        }

        if (d.MaxWait < d.DelayMax)
        {
            failures.Add($"{p}{nameof(d.MaxWait)} ({d.MaxWait}) is shorter than {p}{nameof(d.DelayMax)} ({d.DelayMax}).");
        }

        if (d.MinInterval < TimeSpan.Zero || d.MinInterval > d.MaxWait)
        {
            failures.Add($"{p}{nameof(d.MinInterval)} ({d.MinInterval}) must be between zero and {p}{nameof(d.MaxWait)} ({d.MaxWait}).");
        }

        if (d.FailureRetryMaxDelay < d.FailureRetryDelay)
        {
            failures.Add($"{p}{nameof(d.FailureRetryMaxDelay)} ({d.FailureRetryMaxDelay}) is shorter than {p}{nameof(d.FailureRetryDelay)} ({d.FailureRetryDelay}).");
        }

        if (string.IsNullOrWhiteSpace(d.Trigger))
        {
            failures.Add($"{p}{nameof(d.Trigger)} is empty.");
        }

        try
        {
            LocalDays.FindZone(d.DefaultTimeZone);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{p}{nameof(d.DefaultTimeZone)}: {e.Message.Split(" (Parameter", 2)[0]}");
        }
    }

    private static void CheckIdentifier(string? value, string setting, List<string> failures)
    {
        try
        {
            SqlIdentifier.Validate(value!, setting);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{setting} is '{value}': {e.Message.Split(" (Parameter", 2)[0]}");
        }
    }
}
