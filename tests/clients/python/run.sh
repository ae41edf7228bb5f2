#!/usr/bin/env bash
# Runs the Python client suite: installs grpcio into a cached venv, generates
# stubs from proto/, starts `orgplane dev` on a free port and runs the tests.
# Usage: tests/clients/python/run.sh path/to/orgplane
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
bin="${1:?usage: run.sh path/to/orgplane}"
venv="${ORGPLANE_PY_VENV:-$HOME/.cache/orgplane-tools/venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc_tools, grpc_reflection' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grpcio grpcio-tools grpcio-reflection
fi
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/stubs"
(cd "$root/proto" && "$venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out="$work/stubs" --grpc_python_out="$work/stubs" $(find orgplane -name '*.proto'))
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ORGPLANE_ADMIN_PASSWORD=python-suite-admin
"$bin" dev --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "orgplane dev ready" "$work/dev.log" && break; sleep 0.2; done
grep -q "orgplane dev ready" "$work/dev.log" || { cat "$work/dev.log"; exit 1; }
ORGPLANE_GATEWAY="127.0.0.1:$port" PYTHONPATH="$work/stubs" "$venv/bin/python" -m unittest discover -s "$here" -p 'test_*.py' -v
