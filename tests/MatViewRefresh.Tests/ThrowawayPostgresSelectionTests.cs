using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using MatViewRefresh.Testing;

namespace MatViewRefresh.Tests;

/// <summary>How <see cref="ThrowawayPostgres"/> chooses its server, without a server or a Docker engine.</summary>
public sealed class ThrowawayPostgresSelectionTests
{
    [Theory]
    [InlineData(true, true, true, "External", false, false)]
    [InlineData(true, false, false, "External", false, false)]
    [InlineData(false, true, true, "LocalBinaries", true, false)]
    [InlineData(false, true, false, "LocalBinaries", true, false)]
    [InlineData(false, false, true, "Container", true, true)]
    [InlineData(false, false, false, "None", true, true)]
    public async Task Connection_string_then_local_binaries_then_docker_each_checked_only_when_the_earlier_ones_said_no(
        bool hasConnectionString, bool hasBinaries, bool dockerAnswers, string expected, bool binariesSearched, bool dockerProbed)
    {
        var searched = false;
        var probed = false;

        var source = await ThrowawayPostgresSelection.ChooseAsync(
            hasConnectionString,
            () =>
            {
                searched = true;
                return hasBinaries;
            },
            _ =>
            {
                probed = true;
                return Task.FromResult(dockerAnswers);
            },
            CancellationToken.None);

        Assert.Equal(expected, source.ToString());
        Assert.Equal(binariesSearched, searched);
        Assert.Equal(dockerProbed, probed);
    }

    [Fact]
    public async Task With_no_binaries_and_no_docker_engine_the_error_names_both_ways_out_and_nothing_is_skipped()
    {
        var options = new ThrowawayPostgresOptions { ConnectionString = null, BinDirectory = null };

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ThrowawayPostgres.StartAsync(
            options,
            (_, looked) =>
            {
                looked.Add("/nowhere/pg/bin");
                return null;
            },
            _ => Task.FromResult(false),
            CancellationToken.None));

        Assert.Contains("/nowhere/pg/bin", e.Message);
        Assert.Contains("apt-get install postgresql", e.Message);
        Assert.Contains(ThrowawayPostgresOptions.BinDirectoryVariable, e.Message);
        Assert.Contains("start Docker", e.Message);
        Assert.Contains("no Docker engine answered", e.Message);
        Assert.Contains(ThrowawayPostgresOptions.ConnectionVariable, e.Message);
    }

    [Fact]
    public async Task A_configured_binary_folder_that_is_missing_fails_without_asking_docker()
    {
        var probed = false;
        var options = new ThrowawayPostgresOptions { ConnectionString = null, BinDirectory = "/nonexistent/pg/bin" };

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ThrowawayPostgres.StartAsync(
            options,
            ThrowawayPostgres.FindBinDirectory,
            _ =>
            {
                probed = true;
                return Task.FromResult(true);
            },
            CancellationToken.None));

        Assert.Contains("/nonexistent/pg/bin", e.Message);
        Assert.False(probed);
    }

    [Fact]
    public void Docker_host_wins_else_the_named_pipe_on_windows_else_the_usual_sockets()
    {
        Assert.Equal([new Uri("tcp://10.0.0.5:2375")], DockerEngine.Endpoints("tcp://10.0.0.5:2375", "/home/me", "/run/user/1000", isWindows: false));
        Assert.Equal([new Uri("npipe://./pipe/docker_engine")], DockerEngine.Endpoints(null, @"C:\Users\me", null, isWindows: true));

        var unix = DockerEngine.Endpoints(null, "/home/me", "/run/user/1000", isWindows: false).Select(u => u.AbsolutePath).ToList();
        Assert.Equal("/var/run/docker.sock", unix[0]);
        Assert.Contains("/home/me/.docker/run/docker.sock", unix);
        Assert.Contains("/home/me/.colima/default/docker.sock", unix);
        Assert.Contains("/run/user/1000/docker.sock", unix);
        Assert.Empty(DockerEngine.Endpoints("not a uri", "/home/me", null, isWindows: false));
    }

    [Fact]
    public async Task The_probe_says_yes_only_to_an_engine_that_answers_its_ping()
    {
        using var engine = FakeEngine.Start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");

        Assert.True(await DockerEngine.AnswersAsync([new Uri("unix:///nonexistent/docker.sock"), engine.Endpoint], TimeSpan.FromSeconds(2), CancellationToken.None));
    }

    [Fact]
    public async Task The_probe_says_no_to_a_missing_socket_and_to_an_error_answer()
    {
        using var failing = FakeEngine.Start("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");

        Assert.False(await DockerEngine.AnswersAsync([new Uri("unix:///nonexistent/docker.sock")], TimeSpan.FromSeconds(2), CancellationToken.None));
        Assert.False(await DockerEngine.AnswersAsync([failing.Endpoint], TimeSpan.FromSeconds(2), CancellationToken.None));
    }

    [Fact]
    public async Task The_probe_gives_up_on_a_silent_socket_within_its_time_limit()
    {
        using var silent = FakeEngine.Start(answer: null);

        // A silent engine never answers: without its time limit the probe would never return. The outer bound is
        // generous on purpose (a loaded CI machine), it only proves that the probe gives up by itself.
        var answered = await DockerEngine.AnswersAsync([silent.Endpoint], TimeSpan.FromMilliseconds(300), CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(answered);
    }

    [Fact]
    public void The_default_probe_is_bounded_to_two_seconds()
    {
        Assert.True(DockerEngine.ProbeTimeout <= TimeSpan.FromSeconds(2));
    }

    /// <summary>A Unix socket that reads one request and sends a fixed answer (or nothing).</summary>
    private sealed class FakeEngine : IDisposable
    {
        private readonly Socket _listener;
        private readonly string _path;
        private readonly CancellationTokenSource _stop = new();

        private FakeEngine(string path, string? answer)
        {
            _path = path;
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen();
            _ = ServeAsync(answer);
        }

        public Uri Endpoint => new("unix://" + _path);

        public static FakeEngine Start(string? answer) =>
            new(Path.Combine(Path.GetTempPath(), "mvr-docker-" + Guid.NewGuid().ToString("N")[..8] + ".sock"), answer);

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            File.Delete(_path);
            _stop.Dispose();
        }

        private async Task ServeAsync(string? answer)
        {
            try
            {
                while (true)
                {
                    using var client = await _listener.AcceptAsync(_stop.Token);
                    var buffer = new byte[1024];
                    await client.ReceiveAsync(buffer, _stop.Token);
                    if (answer is null)
                    {
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                    }

                    await client.SendAsync(Encoding.ASCII.GetBytes(answer!), _stop.Token);
                    client.Shutdown(SocketShutdown.Both);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
