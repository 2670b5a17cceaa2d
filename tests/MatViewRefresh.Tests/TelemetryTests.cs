using System.Diagnostics;
using System.Diagnostics.Metrics;
using MatViewRefresh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MatViewRefresh.Tests;

public sealed class TelemetryTests
{
    private static ActivityListener ListenToSpans(List<Activity> spans)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "MatViewRefresh",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = a => { lock (spans) { spans.Add(a); } },
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    [Fact]
    public async Task Each_refresh_has_one_span_and_is_counted_by_outcome_with_its_duration()
    {
        var recorder = new RecordingRefreshExecutor();
        var calls = 0;
        recorder.Handler = (c, _) => c.Kind == RefreshCommandKind.Refresh && ++calls == 2 ? throw new PostgresException("boom", "ERROR", "ERROR", "P0001") : Task.FromResult(RefreshExecution.Empty);
        await using var services = new ServiceCollection().AddMatViewRefresh(o => o.MaxRetryAttempts = 0).AddRecordingRefreshExecutor(recorder).BuildServiceProvider();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        var target = RefreshTarget.View("telemetry.unique_view_name");
        var meterFactory = services.GetRequiredService<IMeterFactory>();

        var spans = new List<Activity>();
        using var activities = ListenToSpans(spans);
        var counted = new List<(string Instrument, string? Unit, string? Outcome, string? Target)>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "MatViewRefresh" && instrument.Meter.Scope == meterFactory)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        void OnMeasurement<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            string? outcome = null, name = null;
            foreach (var tag in tags)
            {
                outcome = tag.Key == "matview_refresh.outcome" ? (string?)tag.Value : outcome;
                name = tag.Key == "matview_refresh.target" ? (string?)tag.Value : name;
            }

            lock (counted)
            {
                counted.Add((instrument.Name, instrument.Unit, outcome, name));
            }
        }

        meters.SetMeasurementEventCallback<long>(OnMeasurement);
        meters.SetMeasurementEventCallback<double>(OnMeasurement);
        meters.Start();

        await refresher.RefreshAsync(target);
        await refresher.RefreshAsync(target);

        var mine = spans.Where(s => s.GetTagItem("matview_refresh.target") as string == "telemetry.unique_view_name").ToList();
        Assert.Equal(2, mine.Count);
        Assert.Equal(["Succeeded", "Failed"], mine.Select(s => s.GetTagItem("matview_refresh.outcome")));
        Assert.Equal(ActivityStatusCode.Error, mine[1].Status);
        Assert.All(mine, span => Assert.Null(span.GetTagItem("matview_refresh.scope"))); // a whole view has no scope
        var measurements = counted.Where(c => c.Target == "telemetry.unique_view_name").ToList();
        Assert.Equal(["succeeded", "failed"], measurements.Where(m => m.Instrument == "matview_refresh.refreshes").Select(m => m.Outcome));
        Assert.Equal(["s", "s"], measurements.Where(m => m.Instrument == "matview_refresh.refresh.duration").Select(m => m.Unit));
    }

    [Fact]
    public async Task Spans_are_named_by_the_target_and_carry_the_scope_only_as_a_tag()
    {
        var recorder = new RecordingRefreshExecutor();
        await using var services = new ServiceCollection().AddMatViewRefresh().AddRecordingRefreshExecutor(recorder).BuildServiceProvider();
        var refresher = services.GetRequiredService<IMaterializedViewRefresher>();
        var spans = new List<Activity>();
        using var activities = ListenToSpans(spans);

        await refresher.RefreshAsync(RefreshTarget.Function("telemetry.per_user_fn", ("user_id", "alice@example.com")));

        var span = Assert.Single(spans, s => s.GetTagItem("matview_refresh.target") as string == "telemetry.per_user_fn");
        Assert.Equal("refresh telemetry.per_user_fn", span.DisplayName);
        Assert.DoesNotContain("alice", span.DisplayName, StringComparison.Ordinal);
        Assert.Equal("user_id=alice@example.com", span.GetTagItem("matview_refresh.scope"));
    }

    [Fact]
    public void Instruments_come_from_the_hosts_meter_factory()
    {
        using var services = new ServiceCollection().AddMatViewRefresh().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        var published = new List<Instrument>();
        using var listener = new MeterListener { InstrumentPublished = (i, _) => { if (i.Meter.Scope == meterFactory) { published.Add(i); } } };
        listener.Start();

        _ = services.GetRequiredService<RefreshMetrics>();

        Assert.Equal(["matview_refresh.refreshes", "matview_refresh.refresh.duration"], published.Select(i => i.Name));
        Assert.All(published, i => Assert.Equal("MatViewRefresh", i.Meter.Name));
    }
}
