namespace MatViewRefresh;

/// <summary>A function target does not resolve to a function taking the given named parameters. Nothing was executed.</summary>
public sealed class RefreshFunctionNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="name">The function's name.</param>
    /// <param name="parameterNames">The parameter names the target passes.</param>
    /// <param name="signatures">The signatures of the functions of that name that exist (for example <c>user_id uuid, day_local date</c>).</param>
    /// <param name="detail">Why no function matched, when known.</param>
    public RefreshFunctionNotFoundException(QualifiedName name, IReadOnlyList<string> parameterNames, IReadOnlyList<string> signatures, string? detail = null)
        : base(BuildMessage(name, parameterNames, signatures, detail))
    {
        Name = name;
        ParameterNames = parameterNames;
        Signatures = signatures;
    }

    /// <summary>The function's name.</summary>
    public QualifiedName Name { get; }

    /// <summary>The parameter names the target passes.</summary>
    public IReadOnlyList<string> ParameterNames { get; }

    /// <summary>The argument lists of the functions of that name that exist.</summary>
    public IReadOnlyList<string> Signatures { get; }

    private static string BuildMessage(QualifiedName name, IReadOnlyList<string> parameterNames, IReadOnlyList<string> signatures, string? detail)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameterNames);
        ArgumentNullException.ThrowIfNull(signatures);
        var called = $"{name}({string.Join(", ", parameterNames.Select(p => p + " => …"))})";
        if (signatures.Count == 0)
        {
            return $"Function {name} does not exist; cannot call {called}." + (detail is null ? string.Empty : " " + detail);
        }

        return $"No function {name} takes the parameters of {called}." + (detail is null ? string.Empty : " " + detail) +
               " It exists as: " + string.Join("; ", signatures.Select(s => $"{name}({s})")) + ".";
    }
}
