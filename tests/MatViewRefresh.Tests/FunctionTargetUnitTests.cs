namespace MatViewRefresh.Tests;

public sealed class FunctionTargetUnitTests
{
    [Fact]
    public void The_scope_lists_parameters_by_name_in_invariant_form_whatever_the_call_order()
    {
        var a = RefreshTarget.Function("marts.f", ("user_id", Guid.Parse("e20a3e9e-1fc2-41ad-b6f7-656668310d13")), ("day_local", new DateOnly(2025, 11, 8)), ("weight", 1.5m));
        var b = RefreshTarget.Function("MARTS.F", ("weight", 1.5m), ("day_local", new DateOnly(2025, 11, 8)), ("user_id", Guid.Parse("e20a3e9e-1fc2-41ad-b6f7-656668310d13")));

        Assert.Equal("day_local=2025-11-08&user_id=e20a3e9e-1fc2-41ad-b6f7-656668310d13&weight=1.5", a.Scope);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, RefreshTarget.Function("marts.f", ("user_id", Guid.Empty)));
        Assert.Equal("marts.f(day_local=2025-11-08&user_id=e20a3e9e-1fc2-41ad-b6f7-656668310d13&weight=1.5)", a.ToString());
    }

    [Fact]
    public void Separators_in_values_are_escaped_so_scopes_cannot_collide()
    {
        var tricky = RefreshTarget.Function("f", ("a", "1&b=2"));
        var plain = RefreshTarget.Function("f", ("a", "1"), ("b", "2"));

        Assert.NotEqual(tricky.Scope, plain.Scope);
        Assert.Equal("a=1%26b%3D2", tricky.Scope);
    }

    [Fact]
    public void Bad_parameter_names_are_rejected_naming_them()
    {
        var twice = Assert.Throws<ArgumentException>(() => RefreshTarget.Function("f", ("a", 1), ("a", 2)));
        var empty = Assert.Throws<ArgumentException>(() => RefreshTarget.Function("f", ("", 1)));
        var badName = Assert.Throws<ArgumentException>(() => RefreshTarget.Function("f; drop", ("a", 1)));

        Assert.Contains("'a' of function public.f is given twice", twice.Message);
        Assert.Contains("Parameter 1 of function public.f", empty.Message);
        Assert.Contains("'f; drop'", badName.Message);
    }

    [Fact]
    public void A_function_call_uses_named_notation_with_quoted_names_and_positional_values()
    {
        var target = RefreshTarget.Function("marts.\"Refresh User\"", ("user id", 7), ("day", new DateOnly(2025, 1, 2)));

        var command = RefreshSql.Refresh(target, null, 1, false, TimeSpan.Zero, TimeSpan.Zero, "ingest", "matview_refresh", countRows: true);

        Assert.Equal("SELECT \"marts\".\"Refresh User\"(\"user id\" => $1, \"day\" => $2)", command.Statements[1].CommandText);
        Assert.Equal([7, new DateOnly(2025, 1, 2)], command.Statements[1].Parameters);
        Assert.Equal(["marts.\"Refresh User\"", "day=2025-01-02&user id=7", "function", 1, "ingest", null], command.Statements[^1].Parameters);
        Assert.NotEqual(RefreshSql.LockKey(target), RefreshSql.LockKey(RefreshTarget.Function("marts.\"Refresh User\"", ("user id", 8), ("day", new DateOnly(2025, 1, 2)))));
    }

    [Theory]
    [InlineData("f", 2, 0, new[] { "user_id", "day_local" }, null, new[] { "user_id", "day_local" }, null)]
    [InlineData("f", 2, 1, new[] { "user_id", "day_local" }, null, new[] { "user_id" }, null)]
    [InlineData("f", 2, 0, new[] { "user_id", "day_local" }, null, new[] { "user_id" }, "Parameter(s) day_local have no default and are not given.")]
    [InlineData("f", 2, 0, new[] { "user_id", "day_local" }, null, new[] { "user", "day_local" }, "It has no parameter named user.")]
    [InlineData("f", 1, 0, new[] { "user_id", "result" }, new[] { "i", "o" }, new[] { "result" }, "It has no parameter named result.")]
    [InlineData("f", 1, 0, new[] { "" }, null, new[] { "x" }, "Its parameters have no names, so they cannot be passed by name.")]
    [InlineData("p", 1, 0, new[] { "x" }, null, new[] { "x" }, "It is a procedure; a refresh target must be a function.")]
    public void Function_signatures_are_matched_by_parameter_name(string kind, int count, int defaults, string[] names, string[]? modes, string[] given, string? problem)
    {
        Assert.Equal(problem, PostgresMatViewCatalog.FunctionProblem(kind, count, defaults, names, modes, given));
    }
}
