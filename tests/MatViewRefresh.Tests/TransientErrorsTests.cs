using Npgsql;
using Polly.Timeout;

namespace MatViewRefresh.Tests;

public sealed class TransientErrorsTests
{
    private static PostgresException Pg(string sqlState, string message = "x") => new(message, "ERROR", "ERROR", sqlState);

    [Theory]
    [InlineData("40001")]
    [InlineData("40P01")]
    [InlineData("55P03")]
    [InlineData("57P01")]
    [InlineData("53300")]
    [InlineData("08006")]
    public void Transient_sqlstates_are_retried(string sqlState) => Assert.True(TransientErrors.IsTransient(Pg(sqlState)));

    [Theory]
    [InlineData("55000")] // no usable unique index: Npgsql calls it transient, it never heals
    [InlineData("0A000")]
    [InlineData("42P01")]
    [InlineData("57014")] // statement timeout or cancel: retrying would time out again
    [InlineData("P0001")]
    [InlineData("MVR01")]
    public void Permanent_sqlstates_are_not_retried(string sqlState) => Assert.False(TransientErrors.IsTransient(Pg(sqlState)));

    [Fact]
    public void Npgsql_would_retry_55000_but_we_do_not()
    {
        Assert.True(Pg("55000").IsTransient);
        Assert.False(TransientErrors.IsTransient(Pg("55000")));
    }

    [Fact]
    public void Connection_loss_and_attempt_timeouts_are_retried()
    {
        Assert.True(TransientErrors.IsTransient(new NpgsqlException("lost", new IOException("reset"))));
        Assert.True(TransientErrors.IsTransient(new TimeoutRejectedException()));
        Assert.False(TransientErrors.IsTransient(new InvalidOperationException()));
        Assert.False(TransientErrors.IsTransient(new OperationCanceledException()));
    }

    [Fact]
    public void Only_the_specific_concurrently_errors_allow_a_fallback()
    {
        Assert.True(TransientErrors.IsConcurrentlyRefused(Pg("55000"), out var why));
        Assert.Contains("unique index", why);
        Assert.True(TransientErrors.IsConcurrentlyRefused(Pg("0A000", "CONCURRENTLY cannot be used when the materialized view is not populated"), out why));
        Assert.Contains("not populated", why);
        Assert.False(TransientErrors.IsConcurrentlyRefused(Pg("0A000", "some other unsupported feature"), out _));
        Assert.False(TransientErrors.IsConcurrentlyRefused(Pg("42501"), out _));
    }
}
