using Microsoft.Extensions.Options;

namespace MatViewRefresh;

/// <summary>Validates <see cref="MatViewRefreshOptions"/> at start; every message names the bad setting and its value.</summary>
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

        CheckNotNegative(options.LockTimeout, p + nameof(options.LockTimeout), failures);
        CheckNotNegative(options.StatementTimeout, p + nameof(options.StatementTimeout), failures);
        CheckNotNegative(options.AttemptTimeout, p + nameof(options.AttemptTimeout), failures);
        CheckNotNegative(options.RetryBaseDelay, p + nameof(options.RetryBaseDelay), failures);
        CheckNotNegative(options.CatalogCacheDuration, p + nameof(options.CatalogCacheDuration), failures);
        if (options.MaxParallelism is < 1 or > 64)
        {
            failures.Add($"{p}{nameof(options.MaxParallelism)} is {options.MaxParallelism}; it must be between 1 and 64.");
        }

        if (options.MaxRetryAttempts is < 0 or > 100)
        {
            failures.Add($"{p}{nameof(options.MaxRetryAttempts)} is {options.MaxRetryAttempts}; it must be between 0 and 100.");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            failures.Add($"{p}{nameof(options.RetryMaxDelay)} ({options.RetryMaxDelay}) is shorter than {p}{nameof(options.RetryBaseDelay)} ({options.RetryBaseDelay}).");
        }

        if (options.HistoryRetention <= TimeSpan.Zero)
        {
            failures.Add($"{p}{nameof(options.HistoryRetention)} is {options.HistoryRetention}; it must be positive.");
        }

        if (options.FastThreshold <= TimeSpan.Zero)
        {
            failures.Add($"{p}{nameof(options.FastThreshold)} is {options.FastThreshold}; it must be positive.");
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
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateDebounce(RefreshDebounceOptions? d, string p, List<string> failures)
    {
        if (d is null)
        {
            failures.Add($"{p.TrimEnd(':')} is null.");
            return;
        }

        CheckNotNegative(d.DelayMin, p + nameof(d.DelayMin), failures);
        CheckNotNegative(d.FailureRetryDelay, p + nameof(d.FailureRetryDelay), failures);
        CheckNotNegative(d.ShutdownTimeout, p + nameof(d.ShutdownTimeout), failures);
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

        if (d.MaxFailureRetries is < 0 or > 1000)
        {
            failures.Add($"{p}{nameof(d.MaxFailureRetries)} is {d.MaxFailureRetries}; it must be between 0 and 1000.");
        }

        if (d.MaxConcurrentRuns < 1)
        {
            failures.Add($"{p}{nameof(d.MaxConcurrentRuns)} is {d.MaxConcurrentRuns}; it must be at least 1.");
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

    private static void CheckNotNegative(TimeSpan value, string setting, List<string> failures)
    {
        if (value < TimeSpan.Zero)
        {
            failures.Add($"{setting} is {value}; it cannot be negative.");
        }
    }
}
