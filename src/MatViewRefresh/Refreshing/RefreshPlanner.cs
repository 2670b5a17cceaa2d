namespace MatViewRefresh;

/// <summary>Turns a selection into an ordered plan over the dependency graph.</summary>
internal static class RefreshPlanner
{
    public static RefreshPlan Plan(MatViewGraph graph, RefreshSelection selection, RefreshMode requested)
    {
        ArgumentNullException.ThrowIfNull(selection);
        var selected = new HashSet<QualifiedName>();
        foreach (var name in selection.ViewNames)
        {
            if (graph.Find(name) is null)
            {
                throw new MaterializedViewNotFoundException(name, NameSuggestions.For(name, graph.Views.Select(v => v.Name)));
            }

            selected.Add(name);
        }

        foreach (var schema in selection.SchemaNames)
        {
            if (!graph.Schemas.Contains(schema))
            {
                var close = graph.Schemas.Where(s => NameSuggestions.Distance(s.ToLowerInvariant(), schema.ToLowerInvariant()) <= 2).Order(StringComparer.Ordinal).Take(3).ToList();
                throw new ArgumentException(
                    $"Schema '{SqlIdentifier.Quote(schema, onlyWhenNeeded: true)}' does not exist." + (close.Count == 0 ? string.Empty : $" Did you mean {string.Join(", ", close.Select(s => $"'{s}'"))}?"),
                    nameof(selection));
            }

            selected.UnionWith(graph.Views.Where(v => v.Name.Schema == schema).Select(v => v.Name));
        }

        var dependents = new HashSet<QualifiedName>();
        if (selection.IncludeDependents)
        {
            foreach (var name in selected.ToList())
            {
                dependents.UnionWith(graph.AllDownstream(name).Where(d => !selected.Contains(d)));
            }

            selected.UnionWith(dependents);
        }

        // Prerequisites inside the plan, also through views left out of it, reduced to the nearest ones.
        var ancestors = selected.ToDictionary(n => n, n => graph.AllUpstream(n).Where(selected.Contains).ToHashSet());
        var dependsOn = ancestors.ToDictionary(
            kv => kv.Key,
            kv => kv.Value.Where(a => !kv.Value.Any(other => other != a && ancestors[other].Contains(a))).Order().ToList());

        var levels = new Dictionary<QualifiedName, int>();
        int LevelOf(QualifiedName name) =>
            levels.TryGetValue(name, out var level) ? level : levels[name] = dependsOn[name].Count == 0 ? 0 : dependsOn[name].Max(LevelOf) + 1;

        var steps = selected
            .OrderBy(LevelOf)
            .ThenBy(n => n)
            .Select(n =>
            {
                var (mode, reason) = ModeDecision.Decide(requested, graph.Find(n)!);
                return new RefreshPlanStep(n, LevelOf(n), dependsOn[n], mode, reason, dependents.Contains(n));
            })
            .ToList();
        return new RefreshPlan(steps);
    }
}

/// <summary>Chooses between a full and a concurrent refresh from what the catalog says.</summary>
internal static class ModeDecision
{
    public const string NotPopulated = "view is not populated";
    public const string NoUniqueIndex = "no unique index without WHERE on plain columns";

    public static (RefreshMode Mode, string Reason) Decide(RefreshMode requested, MatViewInfo view) => requested switch
    {
        RefreshMode.Full => (RefreshMode.Full, "full refresh requested"),
        RefreshMode.Concurrent => (RefreshMode.Concurrent, "concurrent refresh requested"),
        _ when !view.IsPopulated => (RefreshMode.Full, $"auto chose full: {NotPopulated}"),
        _ when !view.HasUsableUniqueIndex => (RefreshMode.Full, $"auto chose full: {NoUniqueIndex}"),
        _ => (RefreshMode.Concurrent, "auto chose concurrent: view is populated and has a usable unique index"),
    };
}
