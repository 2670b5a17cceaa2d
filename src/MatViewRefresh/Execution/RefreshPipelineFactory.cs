using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace MatViewRefresh;

/// <summary>Builds the resilience pipeline around one refresh attempt from the options.</summary>
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
