namespace MatViewRefresh;

/// <summary>The ordered refreshes a batch would run, without running them (a dry run).</summary>
/// <param name="Steps">The steps in execution order: every step comes after the steps it depends on.</param>
public sealed record RefreshPlan(IReadOnlyList<RefreshPlanStep> Steps)
{
    /// <summary>The planned views, in order.</summary>
    public IReadOnlyList<QualifiedName> Views => [.. Steps.Select(s => s.View)];
}

/// <summary>One view in a <see cref="RefreshPlan"/>.</summary>
/// <param name="View">The materialized view.</param>
/// <param name="Level">0 for views that depend on no other planned view; otherwise one more than the deepest view it depends on. Views of one level may run in parallel.</param>
/// <param name="DependsOn">The planned views that must be refreshed first (directly or through views not in the plan).</param>
/// <param name="Mode">The mode the refresh would use.</param>
/// <param name="ModeReason">Why that mode.</param>
/// <param name="IsDependent">True when the view is planned only because <see cref="RefreshSelection.IncludeDependents"/> pulled it in.</param>
public sealed record RefreshPlanStep(
    QualifiedName View,
    int Level,
    IReadOnlyList<QualifiedName> DependsOn,
    RefreshMode Mode,
    string ModeReason,
    bool IsDependent);
