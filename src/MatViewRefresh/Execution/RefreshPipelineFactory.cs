using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace MatViewRefresh;

/// <summary>Builds the resilience pipeline around one refresh attempt from the options.</summary>
/// <remarks>
/// Built here rather than registered with Polly.Extensions' <c>AddResiliencePipeline</c>: the retry predicate is our own
/// SQLSTATE classification and the strategies follow our options (MaxRetryAttempts, AttemptTimeout), so a registry entry
/// would be one more place to configure the same thing, and a second registration under our key would silently replace
/// it. Users extend it the Polly way through <see cref="MatViewRefreshOptions.ConfigureResilience"/>, which hands them the
/// builder; Polly.Extensions is used for what it adds here — its telemetry, through the app's logger factory.
/// </remarks>
internal static class RefreshPipelineFactory
{
    public static readonly ResiliencePropertyKey<string> TargetKey = new("MatViewRefresh.Target");

    public const string PipelineName = "MatViewRefresh";

    /// <summary>
    /// The pipeline: retry (transient errors as we classify them), then the per-attempt timeout, then the host's own
    /// strategies (<see cref="MatViewRefreshOptions.ConfigureResilience"/>). Polly's telemetry (its resilience events
    /// as logs and on the <c>Polly</c> meter) goes to the host's logger factory.
    /// </summary>
    public static ResiliencePipeline Create(MatViewRefreshOptions options, TimeProvider time, ILoggerFactory loggerFactory, ILogger logger)
    {
        var builder = new ResiliencePipelineBuilder { Name = PipelineName, TimeProvider = time };
        if (options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetryAttempts,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Randomizer = options.Randomizer,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && TransientErrors.IsTransient(e)),
                OnRetry = args =>
                {
                    var error = TransientErrors.ToError(args.Outcome.Exception!);
                    Log.RefreshRetrying(
                        logger,
                        args.Context.Properties.GetValue(TargetKey, "?"),
                        args.AttemptNumber + 1,
                        error.SqlState,
                        error.Message,
                        args.RetryDelay.TotalMilliseconds);
                    return default;
                },
            });
        }

        if (options.AttemptTimeout > TimeSpan.Zero)
        {
            builder.AddTimeout(new TimeoutStrategyOptions { Timeout = options.AttemptTimeout });
        }

        options.ConfigureResilience?.Invoke(builder);
        return builder.ConfigureTelemetry(loggerFactory).Build();
    }
}
