using BenchmarkDotNet.Running;
using MatViewRefresh.Benchmarks;

if (args is ["coalescing"])
{
    await CoalescingReport.RunAsync();
    return 0;
}

if (args is ["window", .. var windowOptions])
{
    return await WindowReport.RunAsync(windowOptions);
}

if (args is ["capture", .. var captureOptions])
{
    return await CaptureReport.RunAsync(captureOptions);
}

if (args is ["queue", .. var queueOptions])
{
    return await QueueReport.RunAsync(queueOptions);
}

if (args is ["overhead", .. var options])
{
    return await OverheadReport.RunAsync(options);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
