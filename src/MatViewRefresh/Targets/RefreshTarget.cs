using System.Globalization;
using System.Text;

namespace MatViewRefresh;

/// <summary>What kind of thing a <see cref="RefreshTarget"/> refreshes.</summary>
public enum RefreshTargetKind
{
    /// <summary>A materialized view, refreshed with <c>REFRESH MATERIALIZED VIEW</c>.</summary>
    MaterializedView = 0,

    /// <summary>A function that recomputes a mart (for example one user's day), called with named parameters.</summary>
    Function = 1,

    /// <summary>A mart table kept from a query by a date window: the window's rows deleted and the query's rows inserted, in one transaction.</summary>
    Window = 2,
}

/// <summary>A named parameter of a function target; the value is bound as an Npgsql parameter, never concatenated.</summary>
/// <param name="Name">The function's parameter name.</param>
/// <param name="Value">The value (for example a <see cref="Guid"/>, a <see cref="DateOnly"/>, a string).</param>
public readonly record struct RefreshParameter(string Name, object? Value);

/// <summary>What a refresh refreshes: a materialized view, a function call with named parameters, or a mart table by date window.</summary>
public sealed class RefreshTarget : IEquatable<RefreshTarget>
{
    private string? _text;

    private RefreshTarget(
        RefreshTargetKind kind, QualifiedName name, IReadOnlyList<RefreshParameter> parameters, bool schemaImplied = false, string? dateColumn = null, string? query = null)
    {
        Kind = kind;
        Name = name;
        Parameters = parameters;
        SchemaImplied = schemaImplied;
        DateColumn = dateColumn;
        Query = query;
        Scope = kind == RefreshTargetKind.Function ? ScopeOf(parameters) : string.Empty;
    }

    /// <summary>A materialized view or a function.</summary>
    public RefreshTargetKind Kind { get; }

    /// <summary>The schema-qualified name of the view or function.</summary>
    public QualifiedName Name { get; }

    /// <summary>The date (or <c>timestamptz</c>) column of a window target, exactly as stored; <see langword="null"/> otherwise.</summary>
    public string? DateColumn { get; }

    /// <summary>The SELECT of a window target as given (with <c>@from</c> and <c>@to</c>); <see langword="null"/> otherwise.</summary>
    public string? Query { get; }

    /// <summary>The named parameters of a function target, in call order; empty for a view.</summary>
    public IReadOnlyList<RefreshParameter> Parameters { get; }

    /// <summary>
    /// Which part of the target a refresh covers, as recorded in the refresh log: empty for a view;
    /// for a function, its parameters sorted by name, as <c>day_local=2025-11-08&amp;user_id=…</c>
    /// (values in invariant form, <c>&amp;</c>, <c>=</c> and <c>%</c> percent-encoded).
    /// </summary>
    public string Scope { get; }

    /// <summary>A materialized view, named as in SQL: <c>mv_sales</c>, <c>sales.mv_daily</c> or <c>"Sales"."Daily Totals"</c>.</summary>
    /// <param name="name">The view's name; an unqualified name is looked up in <c>public</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid SQL name; the message names it.</exception>
    public static RefreshTarget View(string name)
    {
        var parsed = QualifiedName.Parse(name, DefaultSchema, out var implied);
        return new RefreshTarget(RefreshTargetKind.MaterializedView, parsed, [], implied);
    }

    /// <summary>A materialized view from its exact catalog parts (no case folding or parsing).</summary>
    /// <param name="schema">The schema, exactly as stored.</param>
    /// <param name="name">The view's name, exactly as stored.</param>
    public static RefreshTarget View(string schema, string name) => new(RefreshTargetKind.MaterializedView, new QualifiedName(schema, name), []);

    /// <summary>A materialized view from a resolved name.</summary>
    public static RefreshTarget View(QualifiedName name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new RefreshTarget(RefreshTargetKind.MaterializedView, name, []);
    }

    /// <summary>
    /// A function call with named parameters, for example
    /// <c>RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", id), ("day_local", day))</c>,
    /// run as <c>SELECT marts.refresh_daily_features_user(user_id =&gt; $1, day_local =&gt; $2)</c>.
    /// The function and its parameter names are checked against the catalog on first use.
    /// </summary>
    /// <param name="name">The function's name, as in SQL; an unqualified name is looked up in <c>public</c>.</param>
    /// <param name="parameters">Named parameters; each name at most once.</param>
    /// <exception cref="ArgumentException">The name or a parameter name is not valid, or a parameter is named twice; the message names it.</exception>
    public static RefreshTarget Function(string name, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var qualified = QualifiedName.Parse(name, DefaultSchema, out var implied);
        var list = new RefreshParameter[parameters.Length];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            var (parameterName, value) = parameters[i];
            try
            {
                SqlIdentifier.Validate(parameterName, nameof(parameters));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"Parameter {i + 1} of function {qualified}: {e.Message.Split(" (Parameter", 2)[0]}", nameof(parameters), e);
            }

            if (!seen.Add(parameterName))
            {
                throw new ArgumentException($"Parameter '{parameterName}' of function {qualified} is given twice.", nameof(parameters));
            }

            list[i] = new RefreshParameter(parameterName, value);
        }

        return new RefreshTarget(RefreshTargetKind.Function, qualified, list, implied);
    }

    /// <summary>
    /// A mart table maintained from a query by a date window, for example
    /// <c>RefreshTarget.Window("marts.daily_sales", "day", "SELECT day, sum(amount) FROM … WHERE day &gt;= @from AND day &lt; @to GROUP BY day")</c>.
    /// The query produces the table's rows (columns in the table's order) for the days <c>[@from, @to)</c>. An incremental refresh
    /// deletes the window's rows and inserts the query's rows for the window in one transaction; a full refresh does the same
    /// over all time (<c>@from</c> = <c>-infinity</c>, <c>@to</c> = <c>infinity</c>). <c>@from</c> and <c>@to</c> are bound as
    /// parameters: <c>date</c> values (local days) when the column is a <c>date</c>, the instants of the local midnights when it
    /// is a <c>timestamptz</c>, local midnights when it is a <c>timestamp</c> — decided from the catalog at run time.
    /// The table is the target's identity: two window targets on one table share its lock and its log row.
    /// </summary>
    /// <param name="table">The mart table, as in SQL; an unqualified name is looked up in <c>public</c>.</param>
    /// <param name="dateColumn">The table's date, <c>timestamptz</c> or <c>timestamp</c> column, exactly as stored (no case folding).</param>
    /// <param name="query">One <c>SELECT</c> (or <c>WITH … SELECT</c>) statement using <c>@from</c> and <c>@to</c>; a trailing <c>;</c> is allowed.</param>
    /// <exception cref="ArgumentException">The table, the column or the query is not valid; the message names it.</exception>
    public static RefreshTarget Window(string table, string dateColumn, string query)
    {
        var qualified = QualifiedName.Parse(table, DefaultSchema, out var implied);
        SqlIdentifier.Validate(dateColumn, nameof(dateColumn));
        WindowQuery.Parse(query);
        return new RefreshTarget(RefreshTargetKind.Window, qualified, [], implied, dateColumn, query);
    }

    /// <summary>The target as people read it: <c>sales.mv_daily</c> or <c>marts.refresh_user(day_local=2025-11-08&amp;user_id=…)</c>.</summary>
    public override string ToString() => _text ??= Kind == RefreshTargetKind.Function ? $"{Name}({Scope})" : Name.ToString();

    /// <summary>Two targets are equal when they name the same view, or the same function with the same scope.</summary>
    public bool Equals(RefreshTarget? other) =>
        other is not null && Kind == other.Kind && Name.Equals(other.Name) && string.Equals(Scope, other.Scope, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as RefreshTarget);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Kind, Name, Scope);

    /// <summary>The name written in the refresh log's <c>target</c> column (the scope goes in its own column).</summary>
    internal string LogName => Name.ToString();

    /// <summary>The schema used for a name written without one, until <see cref="WithDefaultSchema"/> resolves it.</summary>
    internal const string DefaultSchema = "public";

    /// <summary>Whether the name was written without a schema (it then resolves to <see cref="MatViewRefreshOptions.DefaultSchema"/>).</summary>
    internal bool SchemaImplied { get; }

    /// <summary>This target with an unqualified name placed in <paramref name="schema"/>; itself when the name had a schema.</summary>
    internal RefreshTarget WithDefaultSchema(string schema) =>
        !SchemaImplied ? this
        : new RefreshTarget(Kind, string.Equals(schema, Name.Schema, StringComparison.Ordinal) ? Name : new QualifiedName(schema, Name.Name), Parameters, false, DateColumn, Query);

    internal static string FormatValue(object? value) => value switch
    {
        null => "null",
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTime dt => dt.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset dto => dto.ToString("O", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    private static string ScopeOf(IReadOnlyList<RefreshParameter> parameters)
    {
        var builder = new StringBuilder();
        foreach (var parameter in parameters.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (builder.Length > 0)
            {
                builder.Append('&');
            }

            builder.Append(Escape(parameter.Name)).Append('=').Append(Escape(FormatValue(parameter.Value)));
        }

        return builder.ToString();
    }

    private static string Escape(string text) =>
        text.Replace("%", "%25", StringComparison.Ordinal).Replace("&", "%26", StringComparison.Ordinal).Replace("=", "%3D", StringComparison.Ordinal);
}
