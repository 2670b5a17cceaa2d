namespace MatViewRefresh;

/// <summary>Every materialized view of a database and which ones each reads, directly or through plain views.</summary>
internal sealed class MatViewGraph
{
    private readonly Dictionary<QualifiedName, MatViewInfo> _byName;
    private readonly Dictionary<QualifiedName, HashSet<QualifiedName>> _upstream;
    private readonly Dictionary<QualifiedName, HashSet<QualifiedName>> _downstream;

    /// <param name="views">Every materialized view.</param>
    /// <param name="edges">Rewrite-rule dependencies between views and materialized views: (dependent oid, referenced oid).</param>
    /// <param name="schemas">Every schema name.</param>
    public MatViewGraph(IEnumerable<MatViewInfo> views, IEnumerable<(long Dependent, long Referenced)> edges, IEnumerable<string> schemas)
    {
        Views = [.. views];
        Schemas = new HashSet<string>(schemas, StringComparer.Ordinal);
        _byName = Views.ToDictionary(v => v.Name);
        var byOid = Views.ToDictionary(v => v.Oid);
        var references = edges.GroupBy(e => e.Dependent).ToDictionary(g => g.Key, g => g.Select(e => e.Referenced).ToArray());

        _upstream = [];
        _downstream = Views.ToDictionary(v => v.Name, _ => new HashSet<QualifiedName>());
        foreach (var view in Views)
        {
            // Walk through plain views until a materialized view is reached.
            var found = new HashSet<QualifiedName>();
            var seen = new HashSet<long> { view.Oid };
            var stack = new Stack<long>(references.GetValueOrDefault(view.Oid, []));
            while (stack.TryPop(out var oid))
            {
                if (!seen.Add(oid))
                {
                    continue;
                }

                if (byOid.TryGetValue(oid, out var upstream))
                {
                    found.Add(upstream.Name);
                    continue;
                }

                foreach (var next in references.GetValueOrDefault(oid, []))
                {
                    stack.Push(next);
                }
            }

            _upstream[view.Name] = found;
            foreach (var up in found)
            {
                _downstream[up].Add(view.Name);
            }
        }
    }

    public IReadOnlyList<MatViewInfo> Views { get; }

    public IReadOnlySet<string> Schemas { get; }

    public MatViewInfo? Find(QualifiedName name) => _byName.GetValueOrDefault(name);

    /// <summary>Materialized views <paramref name="name"/> reads directly or through plain views.</summary>
    public IReadOnlySet<QualifiedName> DirectUpstream(QualifiedName name) => _upstream[name];

    /// <summary>Every materialized view upstream of <paramref name="name"/>, transitively.</summary>
    public HashSet<QualifiedName> AllUpstream(QualifiedName name) => Closure(name, _upstream);

    /// <summary>Every materialized view downstream of <paramref name="name"/>, transitively.</summary>
    public HashSet<QualifiedName> AllDownstream(QualifiedName name) => Closure(name, _downstream);

    private static HashSet<QualifiedName> Closure(QualifiedName start, Dictionary<QualifiedName, HashSet<QualifiedName>> next)
    {
        var result = new HashSet<QualifiedName>();
        var stack = new Stack<QualifiedName>(next[start]);
        while (stack.TryPop(out var name))
        {
            if (result.Add(name))
            {
                foreach (var n in next[name])
                {
                    stack.Push(n);
                }
            }
        }

        return result;
    }
}
