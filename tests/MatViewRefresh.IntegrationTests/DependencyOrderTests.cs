using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class DependencyOrderTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    // chain:   base_a <- mid_b <- (plain view v_b) <- top_c
    // diamond: d_root <- d_left, d_right <- d_join
    // failing: f_base <- f_middle (raises when flags.fail) <- f_leaf
    // unrelated: lonely
    public async Task InitializeAsync() => await db.ExecuteAsync("""
        DROP SCHEMA IF EXISTS deps CASCADE;
        CREATE SCHEMA deps;
        CREATE TABLE deps.events (id int PRIMARY KEY, kind text NOT NULL);
        INSERT INTO deps.events SELECT g, 'k' || (g % 4) FROM generate_series(1, 40) g;
        CREATE MATERIALIZED VIEW deps.base_a AS SELECT kind, count(*) AS n FROM deps.events GROUP BY kind;
        CREATE MATERIALIZED VIEW deps.mid_b AS SELECT kind, n * 2 AS n2 FROM deps.base_a;
        CREATE VIEW deps.v_b AS SELECT kind, n2 FROM deps.mid_b WHERE n2 > 0;
        CREATE MATERIALIZED VIEW deps.top_c AS SELECT sum(n2) AS total FROM deps.v_b;

        CREATE MATERIALIZED VIEW deps.d_root AS SELECT kind, count(*) AS n FROM deps.events GROUP BY kind;
        CREATE MATERIALIZED VIEW deps.d_left AS SELECT kind, n FROM deps.d_root;
        CREATE MATERIALIZED VIEW deps.d_right AS SELECT kind, n FROM deps.d_root;
        CREATE MATERIALIZED VIEW deps.d_join AS SELECT l.kind, l.n + r.n AS n FROM deps.d_left l JOIN deps.d_right r USING (kind);

        CREATE TABLE deps.flags (fail boolean NOT NULL);
        INSERT INTO deps.flags VALUES (false);
        CREATE FUNCTION deps.boom() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT fail FROM deps.flags) THEN RAISE EXCEPTION 'boom: source data is broken'; END IF;
            RETURN 1;
        END $$;
        CREATE MATERIALIZED VIEW deps.f_base AS SELECT kind, count(*) AS n FROM deps.events GROUP BY kind;
        CREATE MATERIALIZED VIEW deps.f_middle AS SELECT kind, n + deps.boom() AS n FROM deps.f_base;
        CREATE MATERIALIZED VIEW deps.f_leaf AS SELECT sum(n) AS n FROM deps.f_middle;

        CREATE MATERIALIZED VIEW deps.lonely AS SELECT count(*) AS n FROM deps.events;

        -- through SQL-standard function bodies, which pg_depend records: zz_fn_base <- total_of() <- doubled() <- aa_fn_top (names ordered against the dependency)
        CREATE MATERIALIZED VIEW deps.zz_fn_base AS SELECT count(*) AS n FROM deps.events;
        CREATE FUNCTION deps.total_of() RETURNS bigint LANGUAGE sql STABLE RETURN (SELECT n FROM deps.zz_fn_base);
        -- (through EXECUTE: Npgsql splits statements at semicolons and does not know BEGIN ATOMIC)
        DO $$ BEGIN EXECUTE 'CREATE FUNCTION deps.doubled() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT deps.total_of() * 2; END'; END $$;
        CREATE MATERIALIZED VIEW deps.aa_fn_top AS SELECT deps.doubled() AS n;
        """);

    public Task DisposeAsync() => Task.CompletedTask;

    private IMaterializedViewRefresher Refresher(Action<MatViewRefreshOptions>? configure = null) =>
        db.CreateServices(configure).GetRequiredService<IMaterializedViewRefresher>();

    private async Task<Dictionary<string, (DateTime Start, DateTime End)>> LastRunsAsync(long afterId)
    {
        var runs = new Dictionary<string, (DateTime, DateTime)>();
        await using var command = db.DataSource.CreateCommand(
            "SELECT target, started_at, started_at + duration_ms * interval '1 ms' FROM matview_refresh.refresh_history WHERE id > $1 AND success");
        command.Parameters.Add(new() { Value = afterId });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            runs[reader.GetString(0)] = (reader.GetDateTime(1), reader.GetDateTime(2));
        }

        return runs;
    }

    private async Task<long> LastHistoryIdAsync()
    {
        await db.CreateServices().GetRequiredService<IRefreshLog>().EnsureSchemaAsync();
        return await db.ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM matview_refresh.refresh_history");
    }

    [Fact]
    public async Task A_chain_through_a_plain_view_refreshes_upstream_first()
    {
        var before = await LastHistoryIdAsync();

        var batch = await Refresher().RefreshManyAsync(RefreshSelection.Views("deps.top_c", "deps.mid_b", "deps.base_a"));

        Assert.Equal(RefreshBatchStatus.Success, batch.Status);
        Assert.Equal(["deps.base_a", "deps.mid_b", "deps.top_c"], batch.Results.Select(r => r.Target.ToString()));
        var runs = await LastRunsAsync(before);
        Assert.True(runs["deps.base_a"].End <= runs["deps.mid_b"].Start);
        Assert.True(runs["deps.mid_b"].End <= runs["deps.top_c"].Start);
    }

    [Fact]
    public async Task A_view_reading_another_through_sql_standard_functions_is_refreshed_after_it_and_sees_its_new_data()
    {
        await db.ExecuteAsync("INSERT INTO deps.events SELECT g, 'new' FROM generate_series(1000, 1009) g");
        var before = await LastHistoryIdAsync();

        var batch = await Refresher().RefreshManyAsync(RefreshSelection.Views("deps.aa_fn_top", "deps.zz_fn_base"));

        Assert.Equal(RefreshBatchStatus.Success, batch.Status);
        Assert.Equal(["deps.zz_fn_base", "deps.aa_fn_top"], batch.Results.Select(r => r.Target.ToString()));
        var runs = await LastRunsAsync(before);
        Assert.True(runs["deps.zz_fn_base"].End <= runs["deps.aa_fn_top"].Start);
        Assert.Equal(2 * await db.ScalarAsync<long>("SELECT count(*) FROM deps.events"), await db.ScalarAsync<long>("SELECT n FROM deps.aa_fn_top"));
        var plan = await Refresher().PlanAsync(RefreshSelection.Views("deps.zz_fn_base").WithDependents());
        Assert.Equal(["deps.zz_fn_base", "deps.aa_fn_top"], plan.Views.Select(v => v.ToString()));
    }

    [Fact]
    public async Task A_diamond_refreshes_the_root_first_the_join_last_and_the_sides_in_parallel()
    {
        var before = await LastHistoryIdAsync();

        var batch = await Refresher().RefreshManyAsync(
            RefreshSelection.Views("deps.d_join", "deps.d_right", "deps.d_left", "deps.d_root"),
            new RefreshOptions { MaxParallelism = 2 });

        Assert.Equal(RefreshBatchStatus.Success, batch.Status);
        var runs = await LastRunsAsync(before);
        Assert.True(runs["deps.d_root"].End <= runs["deps.d_left"].Start);
        Assert.True(runs["deps.d_root"].End <= runs["deps.d_right"].Start);
        Assert.True(runs["deps.d_left"].End <= runs["deps.d_join"].Start);
        Assert.True(runs["deps.d_right"].End <= runs["deps.d_join"].Start);
    }

    [Fact]
    public async Task The_plan_orders_by_dependency_with_levels_and_nearest_prerequisites()
    {
        var plan = await Refresher().PlanAsync(RefreshSelection.Views("deps.d_join", "deps.d_left", "deps.d_right", "deps.d_root", "deps.top_c", "deps.base_a"));

        var steps = plan.Steps.ToDictionary(s => s.View.ToString());
        Assert.Equal(0, steps["deps.d_root"].Level);
        Assert.Equal(1, steps["deps.d_left"].Level);
        Assert.Equal(2, steps["deps.d_join"].Level);
        Assert.Equal(["deps.d_left", "deps.d_right"], steps["deps.d_join"].DependsOn.Select(n => n.ToString()));
        // top_c reads base_a through mid_b, which is not planned: still ordered after it.
        Assert.Equal(["deps.base_a"], steps["deps.top_c"].DependsOn.Select(n => n.ToString()));
        var order = plan.Views.Select(v => v.ToString()).ToList();
        Assert.True(order.IndexOf("deps.base_a") < order.IndexOf("deps.top_c"));
    }

    [Fact]
    public async Task Planning_refreshes_nothing()
    {
        var before = await LastHistoryIdAsync();

        await Refresher().PlanAsync(RefreshSelection.Schemas("deps"));

        Assert.Equal(before, await LastHistoryIdAsync());
    }

    [Fact]
    public async Task A_failing_middle_view_skips_its_dependents_and_the_batch_is_partial()
    {
        await db.ExecuteAsync("UPDATE deps.flags SET fail = true");
        var before = await LastHistoryIdAsync();
        try
        {
            var batch = await Refresher().RefreshManyAsync(RefreshSelection.Views("deps.f_base", "deps.f_middle", "deps.f_leaf"));

            Assert.Equal(RefreshBatchStatus.PartialSuccess, batch.Status);
            Assert.Equal(RefreshOutcome.Succeeded, batch.Results[0].Outcome);
            Assert.Equal(RefreshOutcome.Failed, batch.Results[1].Outcome);
            Assert.Equal("P0001", batch.Results[1].Error!.SqlState);
            Assert.Equal(1, batch.Results[1].Attempts);
            Assert.Equal(RefreshOutcome.Skipped, batch.Results[2].Outcome);
            Assert.Contains("deps.f_middle", batch.Results[2].Error!.Message);
            Assert.Equal(["deps.f_middle"], batch.FailedViews.Select(v => v.ToString()));
            Assert.Equal(["deps.f_leaf"], batch.SkippedViews.Select(v => v.ToString()));
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'deps.f_leaf' AND id > $1", before));
        }
        finally
        {
            await db.ExecuteAsync("UPDATE deps.flags SET fail = false");
        }
    }

    [Fact]
    public async Task Only_selected_views_are_refreshed_never_unrelated_ones()
    {
        var before = await LastHistoryIdAsync();

        await Refresher().RefreshManyAsync(RefreshSelection.Views("deps.d_left"));

        Assert.Equal(["deps.d_left"], (await LastRunsAsync(before)).Keys);
    }

    [Fact]
    public async Task Include_dependents_adds_downstream_views_only()
    {
        var before = await LastHistoryIdAsync();

        var batch = await Refresher().RefreshManyAsync(RefreshSelection.Views("deps.base_a").WithDependents());

        Assert.Equal(["deps.base_a", "deps.mid_b", "deps.top_c"], batch.Results.Select(r => r.Target.ToString()));
        Assert.Equal(["deps.base_a", "deps.mid_b", "deps.top_c"], (await LastRunsAsync(before)).Keys.Order());
    }

    [Fact]
    public async Task A_schema_selection_refreshes_every_view_of_the_schema_and_nothing_else()
    {
        await db.ExecuteAsync("CREATE SCHEMA IF NOT EXISTS other; CREATE MATERIALIZED VIEW IF NOT EXISTS other.elsewhere AS SELECT 1 AS one");
        var before = await LastHistoryIdAsync();

        var batch = await Refresher(o => o.MaxParallelism = 2).RefreshManyAsync(RefreshSelection.Schemas("deps"));

        Assert.Equal(RefreshBatchStatus.Success, batch.Status);
        Assert.Equal(13, batch.Results.Count);
        Assert.DoesNotContain("other.elsewhere", (await LastRunsAsync(before)).Keys);
    }

    [Fact]
    public async Task An_unknown_schema_is_rejected_before_anything_runs()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Refresher().RefreshManyAsync(RefreshSelection.Schemas("depz")));

        Assert.Contains("'depz'", e.Message);
        Assert.Contains("'deps'", e.Message);
    }

    [Fact]
    public async Task An_unknown_view_in_a_batch_is_rejected_and_nothing_is_refreshed()
    {
        var before = await LastHistoryIdAsync();

        var e = await Assert.ThrowsAsync<MaterializedViewNotFoundException>(
            () => Refresher().RefreshManyAsync(RefreshSelection.Views("deps.base_a", "deps.mid_bb")));

        Assert.Contains("deps.mid_bb", e.Message);
        Assert.Contains(RefreshTarget.View("deps.mid_b").Name, e.Suggestions);
        Assert.Equal(before, await LastHistoryIdAsync());
    }
}
