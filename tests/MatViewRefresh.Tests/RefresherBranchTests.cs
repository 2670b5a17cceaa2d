using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Tests;

using static MatViewRefresh.Tests.EngineHarness;

/// <summary>Branches and boundaries of the engine that the mutation run found untested (no database).</summary>
public sealed class RefresherBranchTests
{
    [Fact]
    public async Task The_servers_mode_and_reason_are_reported_and_a_fallback_reason_wins_over_the_servers()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv", uniqueIndex: false).View("ok"));
        executor.Handler = (c, _) => c.Target.Name.Name == "mv" && c.Mode == RefreshMode.Auto
            ? throw RefreshFailed("55000", concurrently: true)
            : Task.FromResult(RefreshExecution.Empty with { Mode = c.Mode == RefreshMode.Auto ? RefreshMode.Concurrent : c.Mode, ModeReason = "server says so" });

        var plain = await refresher.RefreshAsync(RefreshTarget.View("ok"));
        var fellBack = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.Equal((RefreshMode.Concurrent, "server says so"), (plain.ModeUsed!.Value, plain.ModeReason!));
        Assert.Equal((RefreshMode.Full, "fell back to full: no unique index without WHERE on plain columns (55000)"), (fellBack.ModeUsed!.Value, fellBack.ModeReason!));
    }

    [Fact]
    public async Task Auto_never_falls_back_when_the_server_had_already_chosen_a_full_refresh()
    {
        // No usable index, and a view it reads is not populated: the server ran a full REFRESH, which failed with 55000.
        var (refresher, executor) = Create(new FakeCatalog().View("mv", uniqueIndex: false));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw RefreshFailed("55000", concurrently: false) : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal("failure 55000", result.Error!.Message);
        Assert.Single(executor.Refreshes);
        Assert.Null(result.ModeReason);
    }

    [Fact]
    public async Task A_failed_auto_refresh_reports_no_mode_used_and_records_auto()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("P0001") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.Null(result.ModeUsed);
        var record = Assert.Single(executor.Commands, c => c.Kind == RefreshCommandKind.RecordFailure);
        Assert.Contains("auto", record.Statements[0].Parameters);
    }

    [Fact]
    public async Task A_full_refresh_refused_with_55000_is_not_retried_concurrently_or_as_full_again()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv", uniqueIndex: false));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("55000") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { Mode = RefreshMode.Full });

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal("failure 55000", result.Error!.Message);
        Assert.Equal([RefreshMode.Full], executor.Refreshes.Select(c => c.Mode));
    }

    [Fact]
    public async Task A_function_target_is_checked_against_the_catalog_and_reported_as_a_function_call()
    {
        var catalog = new FakeCatalog();
        catalog.MissingFunctions.Add("marts.gone");
        var (refresher, executor) = Create(catalog);

        var result = await refresher.RefreshAsync(RefreshTarget.Function("marts.refresh_user", ("user_id", 1)));
        await Assert.ThrowsAsync<RefreshFunctionNotFoundException>(() => refresher.RefreshAsync(RefreshTarget.Function("marts.gone", ("user_id", 1))));

        Assert.True(result.Success);
        Assert.Null(result.ModeUsed);
        Assert.Equal("function call", result.ModeReason);
        Assert.Null(Assert.Single(executor.Refreshes).Mode);
    }

    [Fact]
    public async Task Per_call_timeouts_override_the_configured_ones()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"), o => { o.StatementTimeout = TimeSpan.FromMinutes(1); o.LockTimeout = TimeSpan.FromSeconds(9); });

        await refresher.RefreshAsync(RefreshTarget.View("mv"));
        await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { StatementTimeout = TimeSpan.FromSeconds(3), LockTimeout = TimeSpan.FromSeconds(1) });

        Assert.Equal([TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(3)], executor.Refreshes.Select(c => c.StatementTimeout));
        Assert.Equal([TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(1)], executor.Refreshes.Select(c => c.LockTimeout));
    }

    [Fact]
    public async Task A_batch_asks_for_the_configured_default_mode_unless_the_call_chooses()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("a").View("b"), o => o.DefaultMode = RefreshMode.Full);

        await refresher.RefreshManyAsync(RefreshSelection.Views("a", "b"));
        await refresher.RefreshManyAsync(RefreshSelection.Views("a"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.Equal([RefreshMode.Full, RefreshMode.Full, RefreshMode.Concurrent], executor.Refreshes.Select(c => c.Mode));
    }

    [Fact]
    public async Task A_batch_never_runs_more_than_MaxParallelism_refreshes_at_once()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("a").View("b").View("c").View("d").View("e"));
        var running = 0;
        var most = 0;
        var gate = new SemaphoreSlim(0);
        executor.Handler = async (c, _) =>
        {
            if (c.Kind != RefreshCommandKind.Refresh)
            {
                return RefreshExecution.Empty;
            }

            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            await gate.WaitAsync(TimeSpan.FromSeconds(10));
            Interlocked.Decrement(ref running);
            return RefreshExecution.Empty;
        };

        // Steps are started synchronously up to the limit; each then waits in the executor, so what started is visible now.
        var batch = refresher.RefreshManyAsync(RefreshSelection.Views("a", "b", "c", "d", "e"), new RefreshOptions { MaxParallelism = 2 });
        Assert.Equal(2, Volatile.Read(ref running));
        gate.Release(5);

        Assert.Equal(RefreshBatchStatus.Success, (await batch.WaitAsync(TimeSpan.FromSeconds(10))).Status);
        Assert.Equal(2, most);
        Assert.Equal(5, executor.Refreshes.Count);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
