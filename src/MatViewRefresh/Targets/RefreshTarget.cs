namespace MatViewRefresh;

/// <summary>What a refresh refreshes: a materialized view.</summary>
public sealed record RefreshTarget
{
    private RefreshTarget(QualifiedName name) => Name = name;

    /// <summary>The schema-qualified name of the materialized view.</summary>
    public QualifiedName Name { get; }

    /// <summary>The scope of the target within the refresh log; empty for a whole view.</summary>
    public string Scope => string.Empty;

    /// <summary>A materialized view, named as in SQL: <c>mv_sales</c>, <c>sales.mv_daily</c> or <c>"Sales"."Daily Totals"</c>.</summary>
    /// <param name="name">The view's name; an unqualified name is looked up in <c>public</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid SQL name; the message names it.</exception>
    public static RefreshTarget View(string name) => new(QualifiedName.Parse(name));

    /// <summary>A materialized view from its exact catalog parts (no case folding or parsing).</summary>
    /// <param name="schema">The schema, exactly as stored.</param>
    /// <param name="name">The view's name, exactly as stored.</param>
    public static RefreshTarget View(string schema, string name) => new(new QualifiedName(schema, name));

    /// <summary>A materialized view from a resolved name.</summary>
    public static RefreshTarget View(QualifiedName name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new RefreshTarget(name);
    }

    /// <summary>The name as written in the refresh log and in messages.</summary>
    public override string ToString() => Name.ToString();
}
