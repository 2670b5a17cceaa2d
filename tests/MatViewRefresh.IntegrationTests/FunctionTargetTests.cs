using Microsoft.Extensions.DependencyInjection;

namespace MatViewRefresh.IntegrationTests;

public sealed class FunctionTargetTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private static readonly Guid User = Guid.Parse("e20a3e9e-1fc2-41ad-b6f7-656668310d13");
    private static readonly DateOnly Day = new(2025, 11, 8);

    public async Task InitializeAsync()
    {
        await IngestApi.IngestApp.EnsureSchemaAsync(db.DataSource);
        await db.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS public.notes (note text);
            CREATE OR REPLACE FUNCTION public.keep_note(note text, tag text DEFAULT 'none') RETURNS void LANGUAGE sql
                AS $$ INSERT INTO public.notes VALUES (note || '/' || tag) $$;
            CREATE OR REPLACE PROCEDURE public.a_procedure(x int) LANGUAGE sql AS $$ SELECT 1 $$;
            """);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static RefreshTarget UserDay(Guid user, DateOnly day) =>
        RefreshTarget.Function("marts.refresh_daily_features_user", ("user_id", user), ("day_local", day));

    [Fact]
    public async Task A_function_target_recomputes_its_scope_and_is_logged_per_user_day()
    {
        await db.ExecuteAsync("INSERT INTO ingest.samples (user_id, ts, type, value) VALUES ($1, '2025-11-08T10:00:00Z', 'hr', 70), ($1, '2025-11-08T12:00:00Z', 'hr', 80), ($1, '2025-11-09T12:00:00Z', 'hr', 1)", User);
        using var services = db.CreateServices();

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(UserDay(User, Day));
        var freshness = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(UserDay(User, Day));
        var otherDay = await services.GetRequiredService<IRefreshLog>().GetFreshnessAsync(UserDay(User, Day.AddDays(1)));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Null(result.ModeUsed);
        Assert.Equal("function call", result.ModeReason);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT sample_count FROM marts.daily_features WHERE user_id = $1 AND day_local = $2", User, Day));
        Assert.NotNull(freshness);
        Assert.Equal("marts.refresh_daily_features_user", freshness.Target);
        Assert.Equal($"day_local=2025-11-08&user_id={User}", freshness.Scope);
        Assert.Equal("function", freshness.Mode);
        Assert.Null(otherDay);
        var history = await services.GetRequiredService<IRefreshLog>().GetHistoryAsync(limit: 1, target: UserDay(User, Day));
        Assert.Equal($"day_local=2025-11-08&user_id={User}", Assert.Single(history).Scope);
    }

    [Fact]
    public async Task Parameter_values_are_bound_never_concatenated()
    {
        using var services = db.CreateServices();
        const string hostile = "x'); DROP TABLE public.notes; --";

        var result = await services.GetRequiredService<IMaterializedViewRefresher>()
            .RefreshAsync(RefreshTarget.Function("public.keep_note", ("note", hostile)));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal(hostile + "/none", await db.ScalarAsync<string>("SELECT note FROM public.notes ORDER BY ctid DESC LIMIT 1"));
    }

    [Fact]
    public async Task A_missing_function_is_a_clear_error_and_nothing_runs()
    {
        using var services = db.CreateServices();

        var e = await Assert.ThrowsAsync<RefreshFunctionNotFoundException>(() => services.GetRequiredService<IMaterializedViewRefresher>()
            .RefreshAsync(RefreshTarget.Function("marts.refresh_weekly", ("user_id", User))));

        Assert.Equal("Function marts.refresh_weekly does not exist; cannot call marts.refresh_weekly(user_id => …).", e.Message);
    }

    [Fact]
    public async Task Wrong_or_missing_parameter_names_are_reported_with_the_real_signature()
    {
        using var services = db.CreateServices();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();

        var wrong = await Assert.ThrowsAsync<RefreshFunctionNotFoundException>(() => refresher.RefreshAsync(
            RefreshTarget.Function("marts.refresh_daily_features_user", ("user", User), ("day_local", Day))));
        var missing = await Assert.ThrowsAsync<RefreshFunctionNotFoundException>(() => refresher.RefreshAsync(
            RefreshTarget.Function("marts.refresh_daily_features_user", ("day_local", Day))));
        var procedure = await Assert.ThrowsAsync<RefreshFunctionNotFoundException>(() => refresher.RefreshAsync(
            RefreshTarget.Function("public.a_procedure", ("x", 1))));

        Assert.Contains("It has no parameter named user.", wrong.Message);
        Assert.Contains("marts.refresh_daily_features_user(user_id uuid, day_local date)", wrong.Message);
        Assert.Contains("user_id have no default and are not given", missing.Message);
        Assert.Contains("procedure", procedure.Message);
    }

    [Fact]
    public async Task Parameters_with_defaults_may_be_left_out()
    {
        using var services = db.CreateServices();

        var result = await services.GetRequiredService<IMaterializedViewRefresher>()
            .RefreshAsync(RefreshTarget.Function("public.keep_note", ("tag", "t"), ("note", "n")));

        Assert.True(result.Success, result.Error?.ToString());
        Assert.Equal("n/t", await db.ScalarAsync<string>("SELECT note FROM public.notes ORDER BY ctid DESC LIMIT 1"));
    }
}
