using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace MatViewRefresh;

/// <summary>
/// A schema-qualified PostgreSQL object name, held exactly as PostgreSQL stores it
/// (unquoted identifiers folded to lower case, quoted ones kept verbatim).
/// </summary>
public sealed record QualifiedName : IComparable<QualifiedName>
{
    /// <summary>Creates a name from its exact, already-resolved parts (no folding, no parsing).</summary>
    /// <param name="schema">The schema, exactly as stored in the catalog (for example <c>Sales</c>).</param>
    /// <param name="name">The object name, exactly as stored in the catalog (for example <c>Daily Totals</c>).</param>
    /// <exception cref="ArgumentException">A part is empty, contains NUL or is longer than 63 bytes.</exception>
    public QualifiedName(string schema, string name)
    {
        SqlIdentifier.Validate(schema, nameof(schema));
        SqlIdentifier.Validate(name, nameof(name));
        Schema = schema;
        Name = name;
    }

    /// <summary>The schema, as stored in the catalog.</summary>
    public string Schema { get; }

    /// <summary>The object name, as stored in the catalog.</summary>
    public string Name { get; }

    /// <summary>
    /// Parses a name written as in SQL: <c>view</c>, <c>schema.view</c>, <c>"Sales"."Daily Totals"</c>.
    /// Unquoted parts fold to lower case; quoted parts keep case, spaces and doubled quotes.
    /// </summary>
    /// <param name="text">The name as written in SQL.</param>
    /// <param name="defaultSchema">The schema of an unqualified name. The default is <c>public</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="text"/> is not a valid SQL name; the message names it.</exception>
    public static QualifiedName Parse(string text, string defaultSchema = "public") => Parse(text, defaultSchema, out _);

    /// <summary>Parses like <see cref="Parse(string, string)"/> and says whether the schema came from <paramref name="defaultSchema"/>.</summary>
    internal static QualifiedName Parse(string text, string defaultSchema, out bool schemaImplied)
    {
        ArgumentNullException.ThrowIfNull(text);
        schemaImplied = false;
        if (!TryParseParts(text, out var parts, out var problem))
        {
            throw new ArgumentException($"'{text}' is not a valid PostgreSQL name: {problem}.", nameof(text));
        }

        try
        {
            schemaImplied = parts.Count == 1;
            return parts.Count == 1 ? new QualifiedName(defaultSchema, parts[0]) : new QualifiedName(parts[0], parts[1]);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"'{text}' is not a valid PostgreSQL name: {e.Message}", nameof(text), e);
        }
    }

    /// <summary>Parses like <see cref="Parse(string, string)"/>, returning <see langword="false"/> instead of throwing.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out QualifiedName? name, string defaultSchema = "public")
    {
        name = null;
        if (text is null || !TryParseParts(text, out var parts, out _))
        {
            return false;
        }

        try
        {
            name = parts.Count == 1 ? new QualifiedName(defaultSchema, parts[0]) : new QualifiedName(parts[0], parts[1]);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Parses one identifier (for example a schema name) with SQL folding rules.</summary>
    internal static string ParseIdentifier(string text, string paramName)
    {
        ArgumentNullException.ThrowIfNull(text, paramName);
        if (!TryParseParts(text, out var parts, out var problem) || parts.Count != 1)
        {
            throw new ArgumentException($"'{text}' is not a valid PostgreSQL identifier: {problem ?? "it has more than one part"}.", paramName);
        }

        SqlIdentifier.Validate(parts[0], paramName);
        return parts[0];
    }

    /// <summary>The name as SQL text, every part quoted: <c>"sales"."daily_totals"</c>.</summary>
    internal string ToSql() => SqlIdentifier.Quote(Schema) + "." + SqlIdentifier.Quote(Name);

    /// <summary>The name as a person writes it, quoting only where needed: <c>sales.daily_totals</c>, <c>"Sales"."Daily Totals"</c>.</summary>
    public override string ToString() =>
        SqlIdentifier.Quote(Schema, onlyWhenNeeded: true) + "." + SqlIdentifier.Quote(Name, onlyWhenNeeded: true);

    /// <inheritdoc />
    public int CompareTo(QualifiedName? other)
    {
        if (other is null)
        {
            return 1;
        }

        var bySchema = string.CompareOrdinal(Schema, other.Schema);
        return bySchema != 0 ? bySchema : string.CompareOrdinal(Name, other.Name);
    }

    private static bool TryParseParts(string text, out List<string> parts, out string? problem)
    {
        parts = [];
        problem = null;
        var i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            if (i >= text.Length)
            {
                problem = parts.Count == 0 ? "it is empty" : "it ends with '.'";
                return false;
            }

            var part = new StringBuilder();
            if (text[i] == '"')
            {
                i++;
                var closed = false;
                while (i < text.Length)
                {
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            part.Append('"');
                            i += 2;
                            continue;
                        }

                        closed = true;
                        i++;
                        break;
                    }

                    part.Append(text[i++]);
                }

                if (!closed)
                {
                    problem = "a quoted identifier is not closed";
                    return false;
                }

                if (part.Length == 0)
                {
                    problem = "a quoted identifier is empty";
                    return false;
                }
            }
            else
            {
                var c = text[i];
                if (!(char.IsAsciiLetter(c) || c == '_'))
                {
                    problem = $"unexpected character '{c}' at position {i}";
                    return false;
                }

                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '$'))
                {
                    part.Append(char.ToLowerInvariant(text[i++]));
                }
            }

            parts.Add(part.ToString());
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            if (i == text.Length)
            {
                return true;
            }

            if (text[i] != '.')
            {
                problem = $"unexpected character '{text[i]}' at position {i}; names with spaces or symbols must be double-quoted";
                return false;
            }

            if (parts.Count == 2)
            {
                problem = "it has more than two parts (schema.name)";
                return false;
            }

            i++;
        }
    }
}
