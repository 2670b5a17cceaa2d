#!/usr/bin/env bash
# Runs every test: unit tests and integration tests on a real (throwaway) PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet test MatViewRefresh.Library.sln -c Release --blame-hang-timeout 5m "$@"
