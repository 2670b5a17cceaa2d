#!/usr/bin/env bash
# Installs what the build, the tests and the samples need on a fresh machine; does nothing when it is there.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET SDK 10 is required (https://dot.net); 'dotnet' is not on PATH." >&2
  exit 1
fi

# PostgreSQL server binaries for the throwaway test server (MatViewRefresh.Testing finds them itself).
if [ -z "${MATVIEWREFRESH_TEST_CONNECTION:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && ! { [ -n "${MATVIEWREFRESH_PG_BINDIR:-}" ] && [ -x "${MATVIEWREFRESH_PG_BINDIR}/initdb" ]; }; then
  echo "Installing the PostgreSQL server (apt-get install postgresql)..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# pg_cron for PostgreSQL 15: the database-scheduling tests start their own cluster with shared_preload_libraries=pg_cron.
if [ ! -f /usr/lib/postgresql/15/lib/pg_cron.so ]; then
  echo "Installing pg_cron (apt-get install postgresql-15-cron)..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-cron >/dev/null
fi

# Chromium for the status-page browser tests (Playwright drives the system browser: its own download is not used).
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing chromium (apt-get install chromium)..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# script(1) (util-linux, package bsdutils): the CLI tests run the tool on a pseudo-terminal to test Ctrl+C with live progress.
if ! command -v script >/dev/null 2>&1; then
  echo "Installing script(1) (apt-get install bsdutils)..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bsdutils >/dev/null
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
