namespace MatViewRefresh.Tests;

public sealed class DefaultSchemaTests
{
    [Fact]
    public void A_target_written_without_a_schema_takes_the_default_one_written_with_one_keeps_it()
    {
        Assert.Equal("sales.daily", RefreshTarget.View("daily").WithDefaultSchema("sales").ToString());
        Assert.Equal("public.daily", RefreshTarget.View("public.daily").WithDefaultSchema("sales").ToString());
        Assert.Equal("ops.daily", RefreshTarget.View("ops", "daily").WithDefaultSchema("sales").ToString());
        var qualified = RefreshTarget.View("public.daily");
        Assert.Same(qualified, qualified.WithDefaultSchema("sales"));
    }

    [Fact]
    public void A_function_target_keeps_its_parameters_and_scope_when_placed_in_the_default_schema()
    {
        var resolved = RefreshTarget.Function("refresh_user", ("user_id", 7)).WithDefaultSchema("marts");

        Assert.Equal("marts.refresh_user", resolved.Name.ToString());
        Assert.Equal(RefreshTargetKind.Function, resolved.Kind);
        Assert.Equal("user_id=7", resolved.Scope);
        Assert.Equal([new RefreshParameter("user_id", 7)], resolved.Parameters);
    }

    [Fact]
    public void A_selection_places_only_its_unqualified_names_and_keeps_IncludeDependents()
    {
        var selection = RefreshSelection.Views("daily", "ops.weekly").WithDependents().WithDefaultSchema("sales");
        var qualified = RefreshSelection.Views("ops.weekly");

        Assert.Equal(["sales.daily", "ops.weekly"], selection.ViewNames.Select(n => n.ToString()));
        Assert.True(selection.IncludeDependents);
        Assert.Same(qualified, qualified.WithDefaultSchema("sales"));
    }

    [Fact]
    public void A_selection_of_targets_refuses_function_targets_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => RefreshSelection.Views(RefreshTarget.Function("marts.f", ("a", 1))));

        Assert.Contains("marts.f(a=1) is a function target", error.Message);
    }
}
