#!/usr/bin/env bash
# Runs samples/RefreshApi on a throwaway PostgreSQL, makes some history (refreshes, a forced automated run), and takes
# docs/dashboard.png of its status page with Playwright driving the system chromium. Usage: bash scripts/screenshot-dashboard.sh [out.png]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
out="$(realpath -m "${1:-docs/dashboard.png}")"
port="${SCREENSHOT_PORT:-5098}"
base="http://127.0.0.1:${port}/api/entities"

# The Playwright driver (node and its package) comes with the Microsoft.Playwright NuGet package, copied next to the tests.
dotnet build samples/RefreshApi -c Release -v quiet -nologo >/dev/null
dotnet build tests/MatViewRefresh.AspNetCore.Tests -c Release -v quiet -nologo >/dev/null
driver=tests/MatViewRefresh.AspNetCore.Tests/bin/Release/net10.0/.playwright

dotnet run --no-build -c Release --project samples/RefreshApi -- --urls "http://127.0.0.1:${port}" >"${TMPDIR:-/tmp}/screenshot-refreshapi.log" 2>&1 &
app=$!
trap 'kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
  curl -sf "$base/freshness" >/dev/null && break
  kill -0 "$app" 2>/dev/null || { cat "${TMPDIR:-/tmp}/screenshot-refreshapi.log" >&2; exit 1; }
  sleep 0.5
done

curl -sf -X POST "$base/refresh" >/dev/null
curl -sf -X POST "$base/refresh?mode=full" >/dev/null
curl -sf -X POST "$base/refresh/automated/start" >/dev/null
for _ in 1 2 3 4 5; do curl -sf -X POST "$base/refresh/automated/force" >/dev/null; done
curl -sf -X POST "$base/refresh?views=mv_entity_ancestors" >/dev/null

mkdir -p "$(dirname "$out")"
PW_PACKAGE="$PWD/$driver/package" DASHBOARD_URL="$base/dashboard" OUT="$out" "$driver/node/linux-x64/node" scripts/screenshot-dashboard.js
echo "Wrote $out"
