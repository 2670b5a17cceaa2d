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
    [InlineData("57P02")]
    [InlineData("57P03")]
    [InlineData("53300")]
    [InlineData("53400")]
    [InlineData("08000")]
    [InlineData("08001")]
    [InlineData("08003")]
    [InlineData("08004")]
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
    public void Only_55000_and_0A000_may_mean_concurrently_refused_and_the_views_own_state_decides()
    {
        Assert.True(TransientErrors.MayBeConcurrentlyRefused(Pg("55000")));
        Assert.True(TransientErrors.MayBeConcurrentlyRefused(Pg("0A000")));
        Assert.False(TransientErrors.MayBeConcurrentlyRefused(Pg("42501")));
        Assert.False(TransientErrors.MayBeConcurrentlyRefused(new InvalidOperationException()));

        var name = new QualifiedName("public", "v");
        Assert.Equal("view is not populated (0A000)", TransientErrors.ConcurrentlyRefusedBecause(new MatViewInfo(1, name, false, true), "0A000"));
        Assert.Equal("no unique index without WHERE on plain columns (55000)", TransientErrors.ConcurrentlyRefusedBecause(new MatViewInfo(1, name, true, false), "55000"));
        // Populated with a usable index: the 55000 was about something else (a view it reads is not populated).
        Assert.Null(TransientErrors.ConcurrentlyRefusedBecause(new MatViewInfo(1, name, true, true), "55000"));
        Assert.Null(TransientErrors.ConcurrentlyRefusedBecause(null, "55000"));
    }

    [Theory]
    [InlineData("42P01", "relation \"matview_refresh.refresh_history\" does not exist", true)]
    [InlineData("42883", "function matview_refresh.refresh_view(text) does not exist", true)]
    [InlineData("3F000", "schema \"matview_refresh\" does not exist", true)]
    [InlineData("42P01", "relation \"sales.orders\" does not exist", false)]
    [InlineData("55000", "matview_refresh", false)]
    public void A_missing_object_of_our_own_schema_means_a_damaged_log(string sqlState, string message, bool damaged)
    {
        Assert.Equal(damaged, TransientErrors.IsMissingLogObject(Pg(sqlState, message), "matview_refresh"));
    }

    [Fact]
    public void A_missing_object_of_the_views_own_query_is_not_a_damaged_log_although_it_fails_inside_our_function()
    {
        // Every refresh error happens inside matview_refresh.refresh_view: the context does not say whose object is missing.
        var inside = new PostgresException("relation \"staging.orders\" does not exist", "ERROR", "ERROR", "42P01",
            where: "PL/pgSQL function matview_refresh.refresh_view(text,text,text,bigint,boolean,text,text,text,integer,text,boolean) line 44 at EXECUTE");

        Assert.False(TransientErrors.IsMissingLogObject(inside, "matview_refresh"));
        Assert.False(TransientErrors.FailedConcurrently(inside));
        Assert.False(TransientErrors.IsMissingLogObject(new InvalidOperationException("matview_refresh"), "matview_refresh"));
    }

    [Fact]
    public void Connection_losses_are_transient_other_client_errors_are_not()
    {
        Assert.True(TransientErrors.IsTransient(new NpgsqlException("lost", new IOException("reset"))));
        Assert.True(TransientErrors.IsTransient(new NpgsqlException("refused", new System.Net.Sockets.SocketException(111))));
        Assert.True(TransientErrors.IsTransient(new NpgsqlException("slow", new TimeoutException())));
        Assert.False(TransientErrors.IsTransient(new NpgsqlException("bad", new FormatException())));
    }

    [Fact]
    public void An_error_keeps_the_servers_message_and_hint()
    {
        var error = TransientErrors.ToError(new PostgresException("cannot refresh", "ERROR", "ERROR", "55000", hint: "Create a unique index."));

        Assert.Equal("55000", error.SqlState);
        Assert.Equal("cannot refresh Create a unique index.", error.Message);
        Assert.Equal("cannot refresh", TransientErrors.ToError(Pg("55000", "cannot refresh")).Message);
        Assert.StartsWith("The refresh attempt timed out: ", TransientErrors.ToError(new TimeoutRejectedException("late")).Message);
    }
}
