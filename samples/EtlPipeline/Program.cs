// EtlPipeline (seed 001): generate orders, ingest today's, then refresh the marts and views (--smart | --full | --incremental [--days N]).
// With --connection, ConnectionStrings__Default or MATVIEWREFRESH_CONNECTION set it uses that server; otherwise a throwaway local PostgreSQL.
return await EtlPipeline.EtlApp.RunAsync(args, Console.Out, Console.Error);
