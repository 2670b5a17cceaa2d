namespace MatViewRefresh.Testing;

/// <summary>Settings of <see cref="ThrowawayPostgres"/>.</summary>
public sealed class ThrowawayPostgresOptions
{
    /// <summary>The environment variable naming an existing server to use instead of starting one.</summary>
    public const string ConnectionVariable = "MATVIEWREFRESH_TEST_CONNECTION";

    /// <summary>The environment variable naming the folder of the PostgreSQL server binaries.</summary>
    public const string BinDirectoryVariable = "MATVIEWREFRESH_PG_BINDIR";

    /// <summary>
    /// Connection string of an existing server; when set, nothing is started and databases are created there.
    /// <value>The default is the value of <c>MATVIEWREFRESH_TEST_CONNECTION</c>, if any.</value>
    /// </summary>
    public string? ConnectionString { get; set; } = Environment.GetEnvironmentVariable(ConnectionVariable);

    /// <summary>
    /// Folder holding <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.
    /// <value>The default is <c>MATVIEWREFRESH_PG_BINDIR</c>, else <c>pg_config --bindir</c>, else the newest <c>/usr/lib/postgresql/*/bin</c>.</value>
    /// When set and the binaries are not there, <see cref="ThrowawayPostgres.StartAsync(ThrowawayPostgresOptions?, CancellationToken)"/> fails rather than fall back to a container.
    /// </summary>
    public string? BinDirectory { get; set; } = Environment.GetEnvironmentVariable(BinDirectoryVariable);

    /// <summary>Extra server settings (<c>name</c> → <c>value</c>), such as <c>shared_preload_libraries</c>.</summary>
    public IDictionary<string, string> ServerSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Docker image of the fallback container, used only when no server binaries are found and a Docker engine answers.
    /// <value>The default is <c>postgres:15-alpine</c>.</value>
    /// </summary>
    public string ContainerImage { get; set; } = "postgres:15-alpine";

    /// <summary>How long to wait for the local server to start. <value>The default is 60 seconds.</value></summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);
}
