namespace MatViewRefresh.Cli.Tests;

/// <summary>Sample objects in their own schema, so that each test owns what it looks at.</summary>
internal static class Sample
{
    /// <summary>
    /// <c>{schema}.orders</c>, <c>mv_daily</c> (unique index: concurrent), <c>mv_weekly</c> (reads mv_daily; unique index) and
    /// <c>mv_plain</c> (no unique index; its column <c>id</c> is unique in the data).
    /// </summary>
    public static string Sql(string schema) => $"""
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.orders (id int PRIMARY KEY, day date NOT NULL, amount int NOT NULL);
        INSERT INTO {schema}.orders SELECT i, DATE '2026-01-01' + (i % 20), i % 7 FROM generate_series(1, 200) i;
        CREATE MATERIALIZED VIEW {schema}.mv_daily AS SELECT day, sum(amount) AS total FROM {schema}.orders GROUP BY day;
        CREATE UNIQUE INDEX ON {schema}.mv_daily (day);
        CREATE MATERIALIZED VIEW {schema}.mv_weekly AS SELECT date_trunc('week', day)::date AS week, sum(total) AS total FROM {schema}.mv_daily GROUP BY 1;
        CREATE UNIQUE INDEX ON {schema}.mv_weekly (week);
        CREATE MATERIALIZED VIEW {schema}.mv_plain AS SELECT id, amount FROM {schema}.orders;
        """;
}
