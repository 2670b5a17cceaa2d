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
    public void Full_mode_refreshes_without_concurrently()
    {
        var command = RefreshSql.Refresh(RefreshTarget.View("a"), RefreshMode.Full, 1, true, TimeSpan.Zero, TimeSpan.FromSeconds(1.5), "t", "log", countRows: false, pruneOlderThan: null);

        Assert.Equal("REFRESH MATERIALIZED VIEW \"public\".\"a\"", command.Statements[1].CommandText);
        Assert.Equal(["0", "1500ms"], command.Statements[0].Parameters.Skip(2));
        Assert.Equal(3, command.Statements.Count);
    }

    [Fact]
    public void Pruning_and_row_counts_are_added_only_when_asked()
    {
        var command = RefreshSql.Refresh(RefreshTarget.View("a"), RefreshMode.Full, 1, true, TimeSpan.Zero, TimeSpan.Zero, "t", "log", countRows: true, pruneOlderThan: TimeSpan.FromDays(3));

        Assert.Equal(4, command.Statements.Count);
        Assert.StartsWith("DELETE FROM \"log\".refresh_history", command.Statements[2].CommandText);
        Assert.Equal([TimeSpan.FromDays(3)], command.Statements[2].Parameters);
        Assert.Equal("\"public\".\"a\"", command.Statements[3].Parameters[^1]);
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
