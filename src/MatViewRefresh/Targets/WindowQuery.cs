using System.Text;

namespace MatViewRefresh;

/// <summary>
/// Checks a window target's query — one <c>SELECT</c> or <c>WITH … SELECT</c> statement using <c>@from</c> and <c>@to</c> —
/// and rewrites <c>@from</c>/<c>@to</c> to the positional parameters <c>$1</c>/<c>$2</c>. String literals, quoted
/// identifiers, dollar-quoted strings and comments are skipped, so a <c>;</c> or <c>@from</c> inside them counts for nothing.
/// </summary>
internal static class WindowQuery
{
    /// <summary>The query with <c>@from</c> → <c>$1</c>, <c>@to</c> → <c>$2</c>, and a trailing <c>;</c> removed.</summary>
    /// <exception cref="ArgumentException">The query is not one SELECT statement with both parameters; the message says why and quotes it.</exception>
    public static string Parse(string query) => Parse(query, "$1", "$2");

    /// <summary>The query with <c>@from</c> and <c>@to</c> replaced by the given SQL text (for example typed NULLs), and a trailing <c>;</c> removed.</summary>
    /// <exception cref="ArgumentException">The query is not one SELECT statement with both parameters; the message says why and quotes it.</exception>
    public static string Parse(string query, string from, string to)
    {
        ArgumentNullException.ThrowIfNull(query);
        var output = new StringBuilder(query.Length);
        bool hasFrom = false, hasTo = false, ended = false;
        string? firstWord = null;
        var i = 0;
        while (i < query.Length)
        {
            var c = query[i];
            var start = i;
            if (c == '-' && At(query, i, "--"))
            {
                i = query.IndexOf('\n', i) is var nl && nl < 0 ? query.Length : nl;
            }
            else if (c == '/' && At(query, i, "/*"))
            {
                i = SkipBlockComment(query, i);
            }
            else if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else
            {
                if (ended)
                {
                    throw Invalid(query, "it holds more than one statement (text after ';')");
                }

                if (c == ';')
                {
                    ended = true;
                    i++;
                    continue;
                }

                if (c == '\'')
                {
                    i = SkipQuoted(query, i, '\'', backslashEscapes: i > 0 && query[i - 1] is 'e' or 'E');
                }
                else if (c == '"')
                {
                    i = SkipQuoted(query, i, '"', backslashEscapes: false);
                }
                else if (c == '$' && DollarTag(query, i) is { } tag)
                {
                    var close = query.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                    i = close < 0 ? throw Invalid(query, "a dollar-quoted string is not closed") : close + tag.Length;
                }
                else if (c == '@' && i + 1 < query.Length && IsWordChar(query[i + 1]))
                {
                    var end = i + 1;
                    while (end < query.Length && IsWordChar(query[end]))
                    {
                        end++;
                    }

                    var name = query[(i + 1)..end].ToLowerInvariant();
                    if (name == "from")
                    {
                        hasFrom = true;
                        output.Append(from);
                    }
                    else if (name == "to")
                    {
                        hasTo = true;
                        output.Append(to);
                    }
                    else
                    {
                        throw Invalid(query, $"'{query[i..end]}' is not a parameter of a window query (only @from and @to are)");
                    }

                    i = end;
                    continue;
                }
                else if (IsWordChar(c))
                {
                    while (i < query.Length && IsWordChar(query[i]))
                    {
                        i++;
                    }

                    firstWord ??= query[start..i].ToUpperInvariant();
                }
                else
                {
                    i++;
                }

                if (firstWord is null && c != '(')
                {
                    throw Invalid(query, "it does not start with SELECT or WITH");
                }
            }

            output.Append(query, start, i - start);
        }

        if (firstWord is not ("SELECT" or "WITH"))
        {
            throw Invalid(query, firstWord is null ? "it is empty" : "it does not start with SELECT or WITH");
        }

        if (!hasFrom || !hasTo)
        {
            throw Invalid(query, $"it does not use {(hasFrom ? "@to" : hasTo ? "@from" : "@from and @to")}");
        }

        return output.ToString().TrimEnd();
    }

    private static ArgumentException Invalid(string query, string why) =>
        new($"The window query '{query}' is not one SELECT statement with @from and @to: {why}.", nameof(query));

    private static bool At(string text, int index, string value) => string.CompareOrdinal(text, index, value, 0, value.Length) == 0;

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '$';

    private static int SkipBlockComment(string text, int i)
    {
        var depth = 0;
        while (i < text.Length)
        {
            if (At(text, i, "/*"))
            {
                depth++;
                i += 2;
            }
            else if (At(text, i, "*/"))
            {
                i += 2;
                if (--depth == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        return i;
    }

    private static int SkipQuoted(string text, int i, char quote, bool backslashEscapes)
    {
        i++;
        while (i < text.Length)
        {
            if (backslashEscapes && text[i] == '\\')
            {
                i += 2;
            }
            else if (text[i] == quote)
            {
                if (i + 1 < text.Length && text[i + 1] == quote)
                {
                    i += 2;
                }
                else
                {
                    return i + 1;
                }
            }
            else
            {
                i++;
            }
        }

        return i;
    }

    /// <summary>The opening tag (<c>$$</c> or <c>$name$</c>) at <paramref name="i"/>, or <see langword="null"/> for a <c>$1</c> parameter.</summary>
    private static string? DollarTag(string text, int i)
    {
        var end = i + 1;
        while (end < text.Length && (char.IsLetterOrDigit(text[end]) || text[end] == '_'))
        {
            end++;
        }

        return end < text.Length && text[end] == '$' && (end == i + 1 || !char.IsDigit(text[i + 1])) ? text[i..(end + 1)] : null;
    }
}
