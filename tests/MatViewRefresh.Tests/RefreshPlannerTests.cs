namespace MatViewRefresh.Tests;

public sealed class RefreshPlannerTests
{
    private static IEnumerable<string> Names(RefreshPlan plan) => plan.Steps.Select(s => s.View.ToString());

    [Fact]
    public void A_chain_is_ordered_upstream_first_whatever_the_selection_order()
    {
        var graph = new FakeCatalog().View("a").View("b", readsFrom: "a").View("c", readsFrom: "b").Graph();

        var plan = RefreshPlanner.Plan(graph, RefreshSelection.Views("c", "a", "b"), RefreshMode.Full);

        Assert.Equal(["public.a", "public.b", "public.c"], Names(plan));
        Assert.Equal([0, 1, 2], plan.Steps.Select(s => s.Level));
    }

    [Fact]
    public void Dependencies_through_plain_views_count()
    {
        var catalog = new FakeCatalog().View("a").PlainView(1000, "a").PlainView(1001).View("c");
        catalog.PlainView(1001, "a");
        catalog.Reads("c", 1000);

        var plan = RefreshPlanner.Plan(catalog.Graph(), RefreshSelection.Views("c", "a"), RefreshMode.Full);

        Assert.Equal(["public.a", "public.c"], Names(plan));
        Assert.Equal(["public.a"], plan.Steps[1].DependsOn.Select(n => n.ToString()));
    }

    [Fact]
    public void A_diamond_puts_both_sides_on_one_level()
    {
        var graph = new FakeCatalog().View("root").View("left", readsFrom: "root").View("right", readsFrom: "root").View("join", readsFrom: ["left", "right"]).Graph();

        var plan = RefreshPlanner.Plan(graph, RefreshSelection.Views("join", "right", "left", "root"), RefreshMode.Full);

        Assert.Equal(["public.root", "public.left", "public.right", "public.join"], Names(plan));
        Assert.Equal([0, 1, 1, 2], plan.Steps.Select(s => s.Level));
    }

    [Fact]
    public void Dependents_are_added_only_when_asked_and_are_marked()
    {
        var graph = new FakeCatalog().View("a").View("b", readsFrom: "a").View("c", readsFrom: "b").View("other").Graph();

        var without = RefreshPlanner.Plan(graph, RefreshSelection.Views("a"), RefreshMode.Full);
        var with = RefreshPlanner.Plan(graph, RefreshSelection.Views("a").WithDependents(), RefreshMode.Full);

        Assert.Equal(["public.a"], Names(without));
        Assert.Equal(["public.a", "public.b", "public.c"], Names(with));
        Assert.Equal([false, true, true], with.Steps.Select(s => s.IsDependent));
    }

    [Fact]
    public void Auto_mode_is_decided_per_view_from_the_catalog()
    {
        var graph = new FakeCatalog().View("ok").View("empty", populated: false).View("no_index", uniqueIndex: false).Graph();

        var plan = RefreshPlanner.Plan(graph, RefreshSelection.Views("ok", "empty", "no_index"), RefreshMode.Auto);

        var byName = plan.Steps.ToDictionary(s => s.View.Name);
        Assert.Equal(RefreshMode.Concurrent, byName["ok"].Mode);
        Assert.Equal((RefreshMode.Full, "auto chose full: view is not populated"), (byName["empty"].Mode, byName["empty"].ModeReason));
        Assert.Equal((RefreshMode.Full, "auto chose full: no unique index without WHERE on plain columns"), (byName["no_index"].Mode, byName["no_index"].ModeReason));
    }

    [Fact]
    public void An_unknown_view_is_reported_with_close_matches()
    {
        var graph = new FakeCatalog().View("sales.daily_totals").View("sales.weekly_totals").Graph();

        var e = Assert.Throws<MaterializedViewNotFoundException>(() => RefreshPlanner.Plan(graph, RefreshSelection.Views("sales.daily_total"), RefreshMode.Full));

        Assert.Equal("Materialized view 'sales.daily_total' does not exist. Did you mean 'sales.daily_totals'?", e.Message);
    }

    [Fact]
    public void Direct_upstream_stops_at_the_nearest_materialized_view()
    {
        var graph = new FakeCatalog().View("a").View("b", readsFrom: "a").View("c", readsFrom: "b").Graph();

        Assert.Equal(["public.b"], graph.DirectUpstream(QualifiedName.Parse("c")).Select(n => n.ToString()));
        Assert.Equal(["public.a", "public.b"], graph.AllUpstream(QualifiedName.Parse("c")).Select(n => n.ToString()).Order());
    }
}
