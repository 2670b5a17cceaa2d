using BenchmarkDotNet.Running;
using MatViewRefresh.Benchmarks;

if (args is ["coalescing"])
{
    await CoalescingReport.RunAsync();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
