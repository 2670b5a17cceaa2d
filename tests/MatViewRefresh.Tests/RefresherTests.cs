using Polly;
using Polly.Testing;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Tests;

using static MatViewRefresh.Tests.EngineHarness;

/// <summary>The engine over a recording executor and an in-memory catalog: no database.</summary>
public sealed class RefresherTests
{
    [Fact]
    public async Task A_refresh_is_one_statement_that_locks_decides_refreshes_and_logs_with_every_value_a_parameter()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("sales.\"Daily Totals\""));

        await refresher.RefreshAsync(RefreshTarget.View("sales.\"Daily Totals\""), new RefreshOptions { Trigger = "nightly", LockTimeout = TimeSpan.FromSeconds(2) });

        var command = Assert.Single(executor.Refreshes);
        Assert.Equal(RefreshMode.Auto, command.Mode);
        Assert.Equal(RefreshSql.LockKey(RefreshTarget.View("sales.\"Daily Totals\"")), command.LockKey);
        Assert.Equal(2, command.Statements.Count);
        Assert.Equal("SELECT set_config('statement_timeout', $1, true)", command.Statements[0].CommandText);
        var statement = command.Statements[1];
        Assert.Equal(
            "SELECT mode, mode_reason, data_as_of, refreshed_at, duration_ms, row_count FROM \"matview_refresh\".refresh_view($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            statement.CommandText);
        Assert.Equal(["sales", "Daily Totals", "auto", command.LockKey, true, "2000ms", "0", "sales.\"Daily Totals\"", 1, "nightly", false], statement.Parameters);
        Assert.DoesNotContain("Daily", statement.CommandText);
    }

    [Fact]
    public async Task Old_history_is_pruned_in_its_own_command_after_a_success_at_most_once_an_hour()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var executor = new RecordingRefreshExecutor();
        await using var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(time)
            .AddSingleton<IRefreshExecutor>(executor)
            .AddSingleton<IMatViewCatalog>(new FakeCatalog().View("mv"))
            .AddMatViewRefresh(o => { o.AutoCreateSchema = false; o.HistoryRetention = TimeSpan.FromDays(3); })
            .BuildServiceProvider();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();

        await refresher.RefreshAsync(RefreshTarget.View("mv"));
        await refresher.RefreshAsync(RefreshTarget.View("mv"));
        time.Advance(TimeSpan.FromMinutes(59));
        await refresher.RefreshAsync(RefreshTarget.View("mv"));
        time.Advance(TimeSpan.FromMinutes(1));
        await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.Equal(
            [RefreshCommandKind.Refresh, RefreshCommandKind.PruneHistory, RefreshCommandKind.Refresh, RefreshCommandKind.Refresh, RefreshCommandKind.Refresh, RefreshCommandKind.PruneHistory],
            executor.Commands.Select(c => c.Kind));
        Assert.Equal([TimeSpan.FromDays(3)], executor.Commands[1].Statements[0].Parameters);
    }

    [Fact]
    public async Task A_failed_prune_does_not_fail_the_refresh()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.PruneHistory ? throw Pg("40P01") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.True(result.Success);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Transient_failures_are_retried_and_the_attempts_counted()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"), o => o.MaxRetryAttempts = 3);
        var calls = 0;
        executor.Handler = (_, _) => ++calls < 3 ? throw Pg("40P01") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.True(result.Success);
        Assert.Equal(3, result.Attempts);
        Assert.Equal([1, 2, 3], executor.Refreshes.Select(c => c.Attempt));
    }

    [Fact]
    public async Task Exhausted_retries_end_in_a_failed_result_and_a_failure_record_not_an_exception()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"), o => o.MaxRetryAttempts = 2);
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("57P01") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { Trigger = "t" });

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal(3, result.Attempts);
        Assert.Equal("57P01", result.Error!.SqlState);
        var record = executor.Commands[^1];
        Assert.Equal(RefreshCommandKind.RecordFailure, record.Kind);
        Assert.Contains("57P01", record.Statements[0].Parameters);
        Assert.Contains(3, record.Statements[0].Parameters);
    }

    [Fact]
    public async Task A_55000_is_never_retried()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv", uniqueIndex: false), o => o.MaxRetryAttempts = 5);
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("55000") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.Equal(1, result.Attempts);
        Assert.Single(executor.Refreshes);
    }

    [Fact]
    public async Task Auto_falls_back_to_full_when_the_server_refuses_concurrently_for_the_views_own_missing_index()
    {
        // The server chose CONCURRENTLY, then an index was dropped before REFRESH took its lock: the catalog now says why.
        var (refresher, executor) = Create(new FakeCatalog().View("mv", uniqueIndex: false));
        executor.Handler = (c, _) => c.Mode == RefreshMode.Auto ? throw RefreshFailed("55000", concurrently: true) : Task.FromResult(RefreshExecution.Empty with { Mode = c.Mode });

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.True(result.Success);
        Assert.Equal(RefreshMode.Full, result.ModeUsed);
        Assert.Equal("fell back to full: no unique index without WHERE on plain columns (55000)", result.ModeReason);
        Assert.Equal([RefreshMode.Auto, RefreshMode.Full], executor.Refreshes.Select(c => c.Mode));
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Auto_does_not_fall_back_when_the_55000_is_not_about_the_view_itself()
    {
        // Populated, with a usable index: the 55000 came from something else (a view it reads is not populated).
        var (refresher, executor) = Create(new FakeCatalog().View("mv"));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("55000") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"));

        Assert.Equal(RefreshOutcome.Failed, result.Outcome);
        Assert.Equal("failure 55000", result.Error!.Message);
        Assert.Single(executor.Refreshes);
        Assert.DoesNotContain("fell back", result.ModeReason ?? string.Empty);
    }

    [Fact]
    public async Task Explicit_concurrent_refused_for_an_unpopulated_view_keeps_the_servers_message_first_and_says_what_to_do()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv", populated: false));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("0A000") : Task.FromResult(RefreshExecution.Empty);

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { Mode = RefreshMode.Concurrent });

        Assert.StartsWith("failure 0A000 (public.mv cannot be refreshed CONCURRENTLY: view is not populated (0A000). Refresh it once without CONCURRENTLY", result.Error!.Message);
        Assert.Single(executor.Refreshes);
    }

    [Fact]
    public async Task An_unknown_view_reported_by_the_server_throws_not_found_with_suggestions()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("sales.daily"));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg(TransientErrors.ViewMissing) : Task.FromResult(RefreshExecution.Empty);

        var error = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(() => refresher.RefreshAsync(RefreshTarget.View("sales.dialy")));

        Assert.Equal(["sales.daily"], error.Suggestions.Select(s => s.ToString()));
        Assert.DoesNotContain(executor.Commands, c => c.Kind == RefreshCommandKind.RecordFailure);
    }

    [Fact]
    public void The_pipeline_is_retry_then_attempt_timeout_then_the_hosts_strategies()
    {
        var options = new MatViewRefreshOptions
        {
            MaxRetryAttempts = 4,
            AttemptTimeout = TimeSpan.FromSeconds(7),
            ConfigureResilience = b => b.AddTimeout(TimeSpan.FromMinutes(10)),
        };

        var descriptor = RefreshPipelineFactory.Create(options, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .GetPipelineDescriptor();

        Assert.Equal(3, descriptor.Strategies.Count);
        var retry = Assert.IsType<Polly.Retry.RetryStrategyOptions>(descriptor.Strategies[0].Options);
        Assert.Equal(4, retry.MaxRetryAttempts);
        Assert.Equal(Polly.DelayBackoffType.Exponential, retry.BackoffType);
        Assert.True(retry.UseJitter);
        Assert.Equal(TimeSpan.FromSeconds(7), Assert.IsType<Polly.Timeout.TimeoutStrategyOptions>(descriptor.Strategies[1].Options).Timeout);
        Assert.Equal(TimeSpan.FromMinutes(10), Assert.IsType<Polly.Timeout.TimeoutStrategyOptions>(descriptor.Strategies[2].Options).Timeout);
    }

    [Fact]
    public void Without_retries_or_a_timeout_the_pipeline_is_empty()
    {
        var descriptor = RefreshPipelineFactory.Create(new MatViewRefreshOptions { MaxRetryAttempts = 0 }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .GetPipelineDescriptor();

        Assert.Empty(descriptor.Strategies);
    }

    [Fact]
    public async Task A_failing_view_in_a_batch_skips_its_dependents_but_not_independent_views()
    {
        var catalog = new FakeCatalog().View("a").View("b", readsFrom: "a").View("c", readsFrom: "b").View("d");
        var (refresher, executor) = Create(catalog);
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh && c.Target.Name.Name == "a" ? throw Pg("P0001") : Task.FromResult(RefreshExecution.Empty);

        var batch = await refresher.RefreshManyAsync(RefreshSelection.Views("a", "b", "c", "d"));

        Assert.Equal(RefreshBatchStatus.PartialSuccess, batch.Status);
        Assert.Equal(
            [RefreshOutcome.Failed, RefreshOutcome.Skipped, RefreshOutcome.Skipped, RefreshOutcome.Succeeded],
            batch.Results.OrderBy(r => r.Target.Name.Name).Select(r => r.Outcome));
        Assert.Contains("public.b, which was skipped", batch.Results.Single(r => r.Target.Name.Name == "c").Error!.Message);
        Assert.DoesNotContain(executor.Refreshes, c => c.Target.Name.Name is "b" or "c");
    }

    [Fact]
    public async Task A_batch_where_everything_fails_is_failed()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("a").View("b"));
        executor.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh ? throw Pg("P0001") : Task.FromResult(RefreshExecution.Empty);

        var batch = await refresher.RefreshManyAsync(RefreshSelection.Views("a", "b"));

        Assert.Equal(RefreshBatchStatus.Failed, batch.Status);
    }

    [Fact]
    public async Task Independent_views_run_in_parallel_up_to_max_parallelism_and_never_more()
    {
        var catalog = new FakeCatalog();
        for (var i = 0; i < 8; i++)
        {
            catalog.View("v" + i);
        }

        var (refresher, executor) = Create(catalog);
        var running = 0;
        var peak = 0;
        var twoRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        executor.Handler = async (_, _) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            if (now == 3)
            {
                twoRunning.TrySetResult();
            }

            await twoRunning.Task;
            Interlocked.Decrement(ref running);
            return RefreshExecution.Empty;
        };

        var batch = await refresher.RefreshManyAsync(RefreshSelection.Schemas("public"), new RefreshOptions { MaxParallelism = 3 });

        Assert.Equal(RefreshBatchStatus.Success, batch.Status);
        Assert.Equal(3, peak);
    }

    [Fact]
    public async Task A_busy_view_with_skip_if_busy_is_coalesced_not_failed_and_not_recorded()
    {
        var (refresher, executor) = Create(new FakeCatalog().View("mv"));
        executor.Handler = (_, _) => throw Pg("MVR01");

        var result = await refresher.RefreshAsync(RefreshTarget.View("mv"), new RefreshOptions { SkipIfBusy = true });

        Assert.Equal(RefreshOutcome.Coalesced, result.Outcome);
        Assert.Equal([false], executor.Refreshes.Select(c => c.WaitForLock));
        Assert.DoesNotContain(executor.Commands, c => c.Kind == RefreshCommandKind.RecordFailure);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
