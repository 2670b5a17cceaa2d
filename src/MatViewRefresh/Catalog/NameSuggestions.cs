namespace MatViewRefresh;

/// <summary>Finds existing names close to a mistyped one.</summary>
internal static class NameSuggestions
{
    public static IReadOnlyList<QualifiedName> For(QualifiedName wanted, IEnumerable<QualifiedName> existing, int max = 3)
    {
        var target = wanted.ToString().ToLowerInvariant();
        var bareName = wanted.Name.ToLowerInvariant();
        return [.. existing
            .Select(name => (Name: name, Distance: Math.Min(
                Distance(target, name.ToString().ToLowerInvariant()),
                string.Equals(bareName, name.Name, StringComparison.OrdinalIgnoreCase) ? 0 : int.MaxValue)))
            .Where(c => c.Distance <= Math.Max(2, target.Length / 4))
            .OrderBy(c => c.Distance)
            .ThenBy(c => c.Name)
            .Take(max)
            .Select(c => c.Name)];
    }

    /// <summary>Levenshtein distance.</summary>
    internal static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
