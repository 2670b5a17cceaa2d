namespace MatViewRefresh.Tests;

public sealed class RefreshSqlTests
{
    [Fact]
    public void Lock_keys_are_stable_and_differ_per_view()
    {
        var a = RefreshSql.LockKey(RefreshTarget.View("public.a"));

        Assert.Equal(a, RefreshSql.LockKey(RefreshTarget.View("PUBLIC.A")));
        Assert.NotEqual(a, RefreshSql.LockKey(RefreshTarget.View("public.b")));
        Assert.NotEqual(RefreshSql.LockKey(RefreshTarget.View("\"a.b\".c")), RefreshSql.LockKey(RefreshTarget.View("a.\"b.c\"")));
        // Pinned: a key that changed between versions would let two versions refresh one view at once.
        Assert.Equal(1279046789673380282L, a);
    }

    [Fact]
    public void A_view_refresh_is_one_statement_with_the_requested_mode_and_every_value_a_parameter()
    {
        var command = RefreshSql.Refresh(RefreshTarget.View("a"), RefreshMode.Full, 2, true, TimeSpan.Zero, TimeSpan.Zero, "t", "log", countRows: true);

        Assert.Equal(2, command.Statements.Count);
        Assert.Equal(["0"], command.Statements[0].Parameters); // "no timeout" overrides a role's default too
        var statement = command.Statements[1];
        Assert.StartsWith("SELECT mode, mode_reason, data_as_of, refreshed_at, duration_ms, row_count FROM \"log\".refresh_view(", statement.CommandText);
        Assert.Equal(["public", "a", "full", command.LockKey, true, "0", "0", "public.a", 2, "t", true], statement.Parameters);
        Assert.Equal(RefreshMode.Full, command.Mode);
    }

    [Fact]
    public void A_statement_timeout_is_set_by_a_statement_before_the_refresh_because_a_statement_cannot_time_itself()
    {
        var command = RefreshSql.Refresh(RefreshTarget.View("a"), RefreshMode.Full, 1, true, TimeSpan.Zero, TimeSpan.FromSeconds(1.5), "t", "log", countRows: false);

        Assert.Equal(2, command.Statements.Count);
        Assert.Equal("SELECT set_config('statement_timeout', $1, true)", command.Statements[0].CommandText);
        Assert.Equal(["1500ms"], command.Statements[0].Parameters);
        Assert.Equal("1500ms", command.Statements[1].Parameters[6]);
    }

    [Fact]
    public void Auto_is_left_to_the_server_which_decides_from_the_catalog_in_the_same_transaction()
    {
        var command = RefreshSql.Refresh(RefreshTarget.View("a"), null, 1, false, TimeSpan.Zero, TimeSpan.Zero, "t", "log", countRows: false);

        Assert.Equal(RefreshMode.Auto, command.Mode);
        Assert.Equal("auto", command.Statements[^1].Parameters[2]);
        Assert.Equal(false, command.Statements[^1].Parameters[4]);
    }

    [Fact]
    public void Pruning_is_its_own_command()
    {
        var command = RefreshSql.Prune(RefreshTarget.View("a"), "log", TimeSpan.FromDays(3));

        Assert.Equal(RefreshCommandKind.PruneHistory, command.Kind);
        Assert.Equal("SELECT \"log\".prune_history($1) AS row_count", Assert.Single(command.Statements).CommandText);
        Assert.Equal([TimeSpan.FromDays(3)], command.Statements[0].Parameters);
    }

    [Fact]
    public void The_schema_script_is_rewritten_for_the_configured_schema_only_where_it_names_it()
    {
        var script = RefreshLogSchema.Script("Ops Log");

        Assert.DoesNotContain("\"matview_refresh\"", script);
        Assert.Contains("CREATE SCHEMA IF NOT EXISTS \"Ops Log\"", script);
        Assert.Contains("'matview_refresh.started_at'", script);
    }
}
