namespace MatViewRefresh.Tests;

public sealed class QualifiedNameTests
{
    [Theory]
    [InlineData("mv_sales", "public", "mv_sales")]
    [InlineData("Sales.Daily_Totals", "sales", "daily_totals")]
    [InlineData("  sales . daily  ", "sales", "daily")]
    [InlineData("\"Sales\".\"Daily Totals\"", "Sales", "Daily Totals")]
    [InlineData("\"we\"\"ird\".\"a.b\"", "we\"ird", "a.b")]
    [InlineData("s$1._x9", "s$1", "_x9")]
    public void Parse_follows_postgresql_identifier_rules(string text, string schema, string name)
    {
        var parsed = QualifiedName.Parse(text);

        Assert.Equal(schema, parsed.Schema);
        Assert.Equal(name, parsed.Name);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("a.")]
    [InlineData(".a")]
    [InlineData("a.b.c")]
    [InlineData("\"unclosed")]
    [InlineData("\"\".x")]
    [InlineData("has space")]
    [InlineData("x;drop table y")]
    [InlineData("1abc")]
    [InlineData("a-b")]
    public void Parse_rejects_what_is_not_a_name_and_names_it(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => QualifiedName.Parse(text));

        Assert.Contains($"'{text}'", e.Message);
        Assert.False(QualifiedName.TryParse(text, out _));
    }

    [Fact]
    public void Names_longer_than_63_bytes_are_rejected_rather_than_truncated()
    {
        var e = Assert.Throws<ArgumentException>(() => new QualifiedName("public", new string('é', 32)));

        Assert.Contains("63 bytes", e.Message);
        Assert.Equal(63, new QualifiedName("public", new string('a', 63)).Name.Length);
    }

    [Theory]
    [InlineData("public", "mv", "public.mv")]
    [InlineData("Sales", "Daily Totals", "\"Sales\".\"Daily Totals\"")]
    [InlineData("public", "select", "public.\"select\"")]
    [InlineData("a\"b", "c", "\"a\"\"b\".c")]
    public void ToString_quotes_only_where_needed_and_parses_back(string schema, string name, string expected)
    {
        var qualified = new QualifiedName(schema, name);

        Assert.Equal(expected, qualified.ToString());
        Assert.Equal(qualified, QualifiedName.Parse(qualified.ToString()));
    }

    [Fact]
    public void Sql_form_quotes_every_part_and_doubles_embedded_quotes()
    {
        Assert.Equal("\"public\".\"mv\"", new QualifiedName("public", "mv").ToSql());
        Assert.Equal("\"x\"\"; DROP TABLE t; --\".\"v\"", new QualifiedName("x\"; DROP TABLE t; --", "v").ToSql());
    }

    [Fact]
    public void Nul_characters_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new QualifiedName("public", "a\0b"));
    }

    [Fact]
    public void Parse_uses_the_given_default_schema_for_unqualified_names()
    {
        Assert.Equal(new QualifiedName("marts", "daily"), QualifiedName.Parse("daily", "marts"));
    }
}
