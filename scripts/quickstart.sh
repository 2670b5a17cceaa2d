#!/usr/bin/env bash
# Runs samples/QuickStart: on MATVIEWREFRESH_CONNECTION if set, else on a throwaway local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet run --project samples/QuickStart -c Release -- "$@"
