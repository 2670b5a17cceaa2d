namespace MatViewRefresh;

/// <summary>A name does not resolve to a materialized view. Nothing was executed.</summary>
public sealed class MaterializedViewNotFoundException : Exception
{
    /// <summary>Creates the exception for <paramref name="name"/>.</summary>
    /// <param name="name">The name that did not resolve.</param>
    /// <param name="suggestions">Existing materialized views with a close name.</param>
    /// <param name="actualKind">What the name is instead (for example <c>a table</c>), if it names something else.</param>
    public MaterializedViewNotFoundException(QualifiedName name, IReadOnlyList<QualifiedName> suggestions, string? actualKind = null)
        : base(BuildMessage(name, suggestions, actualKind))
    {
        Name = name;
        Suggestions = suggestions;
    }

    /// <summary>The name that did not resolve.</summary>
    public QualifiedName Name { get; }

    /// <summary>Existing materialized views with a close name, closest first.</summary>
    public IReadOnlyList<QualifiedName> Suggestions { get; }

    private static string BuildMessage(QualifiedName name, IReadOnlyList<QualifiedName> suggestions, string? actualKind)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(suggestions);
        var message = actualKind is null
            ? $"Materialized view '{name}' does not exist."
            : $"'{name}' is {actualKind}, not a materialized view.";
        return suggestions.Count == 0
            ? message
            : message + " Did you mean " + string.Join(", ", suggestions.Select(s => $"'{s}'")) + "?";
    }
}
