using System.Text;

namespace MatViewRefresh;

/// <summary>The one place where SQL identifiers are quoted.</summary>
internal static class SqlIdentifier
{
    /// <summary>PostgreSQL truncates identifiers past NAMEDATALEN - 1 bytes; we reject them instead.</summary>
    public const int MaxBytes = 63;

    /// <summary>
    /// Quotes <paramref name="identifier"/> as a PostgreSQL identifier, doubling embedded quotes.
    /// With <paramref name="onlyWhenNeeded"/>, a plain lower-case identifier is returned as is (for display).
    /// </summary>
    public static string Quote(string identifier, bool onlyWhenNeeded = false)
    {
        Validate(identifier, nameof(identifier));
        if (onlyWhenNeeded && IsPlain(identifier))
        {
            return identifier;
        }

        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>Throws when <paramref name="identifier"/> could never name a PostgreSQL object.</summary>
    public static void Validate(string identifier, string paramName)
    {
        ArgumentNullException.ThrowIfNull(identifier, paramName);
        if (identifier.Length == 0)
        {
            throw new ArgumentException("An SQL identifier cannot be empty.", paramName);
        }

        if (identifier.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The SQL identifier '{identifier.Replace("\0", "\\0", StringComparison.Ordinal)}' contains a NUL character.", paramName);
        }

        if (Encoding.UTF8.GetByteCount(identifier) > MaxBytes)
        {
            throw new ArgumentException($"The SQL identifier '{identifier}' is longer than PostgreSQL's limit of {MaxBytes} bytes.", paramName);
        }
    }

    private static bool IsPlain(string identifier)
    {
        if (!(identifier[0] is (>= 'a' and <= 'z') or '_'))
        {
            return false;
        }

        foreach (var c in identifier)
        {
            if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '$'))
            {
                return false;
            }
        }

        return !ReservedWords.Contains(identifier);
    }

    // Keywords that must be quoted to be used as names (a display form must parse back to the same name).
    private static readonly HashSet<string> ReservedWords = new(StringComparer.Ordinal)
    {
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast",
        "check", "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role",
        "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
        "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in",
        "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select",
        "session_user", "some", "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user",
        "using", "variadic", "when", "where", "window", "with",
    };
}
