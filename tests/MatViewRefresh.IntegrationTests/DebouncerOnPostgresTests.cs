using IngestApi;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.IntegrationTests;

/// <summary>Refresh-on-ingest on a real server, with two debouncers on two connections pools (two "workers").</summary>
public sealed class DebouncerOnPostgresTests(DatabaseFixture db) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    public Task InitializeAsync() => IngestApp.EnsureSchemaAsync(db.DataSource).WaitAsync(TimeSpan.FromSeconds(30));

    public Task DisposeAsync() => Task.CompletedTask;

    private ServiceProvider Worker(int maxFailureRetries = 5) => db.CreateServices(o =>
    {
        o.Debounce.MaxFailureRetries = maxFailureRetries;
        o.Debounce.FailureRetryMaxDelay = TimeSpan.FromMilliseconds(200);
        o.Debounce.DelayMin = TimeSpan.FromMilliseconds(10);
        o.Debounce.DelayMax = TimeSpan.FromMilliseconds(40);
        o.Debounce.MaxWait = TimeSpan.FromMilliseconds(400);
        o.Debounce.MinInterval = TimeSpan.FromMilliseconds(50);
        o.Debounce.FailureRetryDelay = TimeSpan.FromMilliseconds(50);
    });

    [Fact]
    public async Task Fifty_concurrent_ingest_tasks_over_ten_users_leave_every_mart_equal_to_its_samples()
    {
        var workers = new[] { Worker(), Worker() };
        var debouncers = workers.Select(w => w.GetRequiredService<IRefreshDebouncer>()).ToArray();
        var users = Enumerable.Range(0, 10).Select(_ => Guid.NewGuid()).ToArray();
        var requested = new System.Collections.Concurrent.ConcurrentDictionary<(Guid, DateOnly), bool>();
        var tickets = new System.Collections.Concurrent.ConcurrentBag<Task<RefreshResult>>();
        var zone = "America/Chicago";

        var ingest = Enumerable.Range(0, 50).Select(task => Task.Run(async () =>
        {
            var random = new Random(task);
            var user = users[task % users.Length];
            for (var batch = 0; batch < 6; batch++)
            {
                var samples = Enumerable.Range(0, random.Next(1, 20))
                    .Select(_ => (Ts: new DateTimeOffset(2025, 11, 8, 0, 0, 0, TimeSpan.Zero).AddMinutes(random.Next(0, 3 * 24 * 60)), Value: Math.Round(random.NextDouble() * 100, 2)))
                    .ToList();
                await using (var connection = await db.DataSource.OpenConnectionAsync())
                await using (var transaction = await connection.BeginTransactionAsync())
                {
                    await using var insert = new NpgsqlCommand(
                        "INSERT INTO ingest.samples (user_id, ts, type, value) SELECT $1, unnest($2::timestamptz[]), 'hr', unnest($3::float8[])", connection, transaction);
                    insert.Parameters.Add(new() { Value = user });
                    insert.Parameters.Add(new() { Value = samples.Select(s => s.Ts).ToArray() });
                    insert.Parameters.Add(new() { Value = samples.Select(s => s.Value).ToArray() });
                    await insert.ExecuteNonQueryAsync();
                    await transaction.CommitAsync();
                }

                var debouncer = debouncers[random.Next(debouncers.Length)];
                foreach (var day in samples.Select(s => LocalDays.Of(s.Ts, zone)).Distinct())
                {
                    requested[(user, day)] = true;
                    tickets.Add(debouncer.Request(IngestApp.DayTarget(user, day)).Completion);
                }

                await Task.Delay(random.Next(0, 30)); // ingest pacing, not a wait for background work
            }
        })).ToArray();
        await Task.WhenAll(ingest).WaitAsync(TimeSpan.FromMinutes(2));

        // Quiescence: every ticket completes only after a run that started after its request. No extra requests are
        // made here: they would trigger runs that hide a lost update.
        var results = await Task.WhenAll(tickets).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(results, r => Assert.True(r.Success, r.Error?.ToString()));

        var mismatches = await db.ScalarAsync<long>("""
            WITH expected AS (
                SELECT user_id, (ts AT TIME ZONE 'America/Chicago')::date AS day_local, count(*) AS n, sum(value) AS total
                  FROM ingest.samples WHERE user_id = ANY($1) GROUP BY 1, 2
            )
            SELECT count(*) FROM expected e
              FULL JOIN (SELECT * FROM marts.daily_features WHERE user_id = ANY($1)) f USING (user_id, day_local)
             WHERE f.sample_count IS DISTINCT FROM e.n OR abs(coalesce(f.value_sum, -1) - coalesce(e.total, -2)) > 1e-6
            """, users);
        Assert.Equal(0L, mismatches);
        Assert.True(requested.Count >= 20, "the timeline touched many user-days");

        // One run at a time per target across both workers.
        var overlaps = await db.ScalarAsync<long>("""
            WITH runs AS (
                SELECT id, scope, tstzrange(started_at, started_at + duration_ms * interval '1 ms') AS span
                  FROM matview_refresh.refresh_history WHERE target = 'marts.refresh_daily_features_user' AND success
            )
            SELECT count(*) FROM runs a JOIN runs b ON a.scope = b.scope AND a.id < b.id AND a.span && b.span
            """);
        Assert.Equal(0L, overlaps);
    }

    [Fact]
    public async Task A_failing_refresh_is_retried_and_the_caller_never_sees_it()
    {
        await db.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS public.flaky_state (failures_left int NOT NULL);
            TRUNCATE public.flaky_state; INSERT INTO public.flaky_state VALUES (1);
            CREATE OR REPLACE FUNCTION public.flaky_refresh(user_id uuid) RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT failures_left FROM public.flaky_state) > 0 THEN
                    RAISE EXCEPTION 'mart source is locked for maintenance';
                END IF;
            END $$;
            """);
        using var worker = Worker(maxFailureRetries: 1000);
        var debouncer = worker.GetRequiredService<IRefreshDebouncer>();
        var target = RefreshTarget.Function("public.flaky_refresh", ("user_id", Guid.NewGuid()));

        var ticket = debouncer.Request(target);
        await DatabaseFixture.EventuallyAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM matview_refresh.refresh_history WHERE target = 'public.flaky_refresh' AND NOT success") >= 2,
            "two failed runs to be recorded in the history");
        Assert.False(ticket.Completion.IsCompleted, "a failing run is retried, not reported to the caller");
        await db.ExecuteAsync("UPDATE public.flaky_state SET failures_left = 0");
        var result = await ticket.Completion.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(result.Success, result.Error?.ToString());
    }
}
