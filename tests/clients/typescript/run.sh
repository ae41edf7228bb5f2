#!/usr/bin/env bash
# Runs the TypeScript client suite: installs the pinned npm packages
# (`npm ci`), generates the client from proto/ (buf + protoc-gen-es, both
# from node_modules), builds, starts `orgplane dev` on a free port with the
# page's origin in its CORS allow-list, runs the user story over gRPC and
# over gRPC-Web, then the browser check in headless Chromium.
#
# Usage: tests/clients/typescript/run.sh path/to/orgplane
# Without Chromium (/usr/bin/chromium, or $CHROMIUM) the browser check is
# skipped, except under CI=true, where it fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "${1:?usage: run.sh path/to/orgplane}")"
cd "$here"

npm ci --no-fund --no-audit --loglevel=error
npm run -s generate
npm run -s build

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port)
page_port=$(free_port)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
ORGPLANE_ADMIN_PASSWORD=typescript-suite-admin "$bin" dev --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --cors-origin "http://127.0.0.1:$page_port" >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "orgplane dev ready" "$work/dev.log" && break; sleep 0.2; done
grep -q "orgplane dev ready" "$work/dev.log" || { cat "$work/dev.log"; exit 1; }
export ORGPLANE_GATEWAY="http://127.0.0.1:$port" ORGPLANE_PAGE_PORT="$page_port"

status=0
for transport in grpc grpc-web; do
  ORGPLANE_TRANSPORT=$transport npm run -s test || status=1
done
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
  CHROMIUM="$chromium" npm run -s test:browser || status=1
elif [ "${CI:-}" = true ]; then
  echo "browser check: no Chromium at $chromium (apt-get install chromium)"; status=1
else
  echo "browser check skipped: no Chromium at $chromium (apt-get install chromium)"
fi
[ "$status" = 0 ] || { echo "--- orgplane dev's log"; tail -50 "$work/dev.log"; }
exit "$status"
