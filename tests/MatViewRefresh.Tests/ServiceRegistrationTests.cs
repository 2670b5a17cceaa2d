using MatViewRefresh.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MatViewRefresh.Tests;

public sealed class ServiceRegistrationTests
{
    [Fact]
    public void AddMatViewRefresh_resolves_every_service_without_touching_a_database()
    {
        using var services = new ServiceCollection()
            .AddMatViewRefresh(o => o.ConnectionString = "Host=127.0.0.1;Port=1;Database=none")
            .BuildServiceProvider();

        Assert.IsType<MaterializedViewRefresher>(services.GetRequiredService<IMaterializedViewRefresher>());
        Assert.IsType<RefreshLog>(services.GetRequiredService<IRefreshLog>());
        Assert.IsType<NpgsqlRefreshExecutor>(services.GetRequiredService<IRefreshExecutor>());
        Assert.IsType<BackgroundRefreshTaskFactory>(services.GetRequiredService<IRefreshTaskFactory>());
        Assert.IsType<RefreshDebouncer>(services.GetRequiredService<IRefreshDebouncer>());
        Assert.Same(services.GetRequiredService<IRefreshDebouncer>(), services.GetRequiredService<IRefreshDebouncer>());
        Assert.Same(TimeProvider.System, services.GetRequiredService<TimeProvider>());
    }

    [Fact]
    public void Calling_it_twice_registers_nothing_twice()
    {
        var services = new ServiceCollection().AddMatViewRefresh().AddMatViewRefresh();

        Assert.Single(services, d => d.ServiceType == typeof(IMaterializedViewRefresher));
        Assert.Single(services, d => d.ServiceType == typeof(IRefreshExecutor));
        // Two validators, once each: the source-generated single-setting rules and the hand-written cross-setting ones.
        Assert.Equal(
            [typeof(MatViewRefreshOptionsDataValidator), typeof(MatViewRefreshOptionsValidator)],
            services.Where(d => d.ServiceType == typeof(IValidateOptions<MatViewRefreshOptions>)).Select(d => d.ImplementationType));
    }

    [Fact]
    public async Task A_swapped_executor_and_time_provider_are_used()
    {
        var executor = new RecordingRefreshExecutor();
        var time = new SteppingTimeProvider();
        await using var services = new ServiceCollection()
            .AddSingleton<IRefreshExecutor>(executor)
            .AddSingleton<TimeProvider>(time)
            .AddSingleton<IMatViewCatalog>(new FakeCatalog().View("mv"))
            .AddMatViewRefresh(o => o.AutoCreateSchema = false)
            .BuildServiceProvider();

        var result = await services.GetRequiredService<IMaterializedViewRefresher>().RefreshAsync(RefreshTarget.View("mv"));

        Assert.Same(executor, services.GetRequiredService<IRefreshExecutor>());
        Assert.Equal("public.mv", Assert.Single(executor.Refreshes).Target.ToString());
        Assert.Equal(SteppingTimeProvider.Start, result.StartedAt);
    }

    [Fact]
    public void A_missing_keyed_data_source_is_a_clear_error_naming_the_key()
    {
        using var services = new ServiceCollection().AddMatViewRefresh(o => o.DataSourceKey = "reporting").BuildServiceProvider();

        var error = Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<RefreshDataSource>().Value);

        Assert.Contains("'reporting'", error.Message);
    }

    [Fact]
    public void A_data_source_registered_by_the_app_is_used_not_a_new_one()
    {
        using var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Database=app");
        using var services = new ServiceCollection().AddSingleton(dataSource).AddMatViewRefresh().BuildServiceProvider();

        Assert.Same(dataSource, services.GetRequiredService<RefreshDataSource>().Value);
    }

    [Fact]
    public void Without_a_data_source_or_connection_string_the_error_says_what_to_do()
    {
        using var services = new ServiceCollection().AddMatViewRefresh().BuildServiceProvider();

        var e = Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<RefreshDataSource>().Value);

        Assert.Contains("MatViewRefresh:ConnectionString", e.Message);
        Assert.Contains("NpgsqlDataSource", e.Message);
    }

    [Fact]
    public void Options_bind_from_a_configuration_section()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MatViewRefresh:Schema"] = "ops",
            ["MatViewRefresh:DefaultMode"] = "Full",
            ["MatViewRefresh:LockTimeout"] = "00:00:05",
            ["MatViewRefresh:MaxParallelism"] = "4",
        }).Build();
        using var services = new ServiceCollection().AddMatViewRefresh(configuration.GetSection("MatViewRefresh")).BuildServiceProvider();

        var options = services.GetRequiredService<IOptions<MatViewRefreshOptions>>().Value;

        Assert.Equal("ops", options.Schema);
        Assert.Equal(RefreshMode.Full, options.DefaultMode);
        Assert.Equal(TimeSpan.FromSeconds(5), options.LockTimeout);
        Assert.Equal(4, options.MaxParallelism);
    }

    [Fact]
    public async Task Bad_options_stop_the_host_at_start_with_messages_naming_each_setting()
    {
        using var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s.AddMatViewRefresh(o =>
            {
                o.MaxParallelism = 0;
                o.Schema = "";
                o.SlowThreshold = TimeSpan.FromMilliseconds(10);
                o.LockTimeout = TimeSpan.FromSeconds(-1);
            }))
            .Build();

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("MatViewRefresh:MaxParallelism is 0; it must be between 1 and 64.", e.Failures);
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:Schema is ''", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:SlowThreshold", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MatViewRefresh:LockTimeout is -00:00:01", StringComparison.Ordinal));
    }

    private sealed class SteppingTimeProvider : TimeProvider
    {
        public static readonly DateTimeOffset Start = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Start;
    }
}
