#!/usr/bin/env bash
# Guards the public contract that clients are generated from.
#
# 1. `buf breaking` of proto/ against a git ref of this repository (default
#    HEAD~1: the previous commit of main, when CI runs on main's head).
#    Public services may only change compatibly; a wire-breaking change goes
#    into a new version package. The internal services are ignored
#    (proto/buf.yaml): orgplane's processes are deployed together.
# 2. The guard itself: on copies of proto/, removing a field of a public
#    message must be caught, and removing one of an internal message must
#    not.
#
# Usage: tests/contract/run.sh path/to/buf [git-ref]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
buf="${1:?usage: run.sh path/to/buf [git-ref]}"
case "$buf" in */*) buf="$(realpath "$buf")" ;; esac
ref="${2:-HEAD~1}"
cd "$root/proto"

if git -C "$root" rev-parse -q --verify "$ref^{commit}" >/dev/null; then
  if git -C "$root" cat-file -e "$ref:proto/buf.yaml" 2>/dev/null; then
    "$buf" breaking --against "$root/.git#ref=$ref,subdir=proto"
    echo "contract: no breaking change to the public services since $ref"
  else
    echo "contract: $ref has no proto/ to compare with"
  fi
else
  echo "contract: $ref is not in this clone; nothing to compare with"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Removes the first field of message `$2` in file `$1` of the copy `$3`.
drop_first_field() {
  python3 - "$3/$1" "$2" <<'PY'
import re, sys
path, message = sys.argv[1], sys.argv[2]
text = open(path).read()
body = re.search(r"\nmessage " + message + r" \{\n(.*?)\n\}", text, re.S)
field = re.search(r"^  [\w.]+ \w+ = \d+;\n", body.group(1) + "\n", re.M)
start = body.start(1) + field.start()
open(path, "w").write(text[:start] + text[start + len(field.group(0)):])
PY
}
cp -r "$root/proto" "$work/public"
drop_first_field orgplane/organizations/v1/resources.proto Organization "$work/public"
if (cd "$work/public" && "$buf" breaking --against "$root/proto" >/dev/null); then
  echo "contract: removing a field of a public message was not caught"; exit 1
fi
cp -r "$root/proto" "$work/internal"
drop_first_field orgplane/organizations/v1/internal.proto WatchAccessChangesResponse "$work/internal"
if ! (cd "$work/internal" && "$buf" breaking --against "$root/proto"); then
  echo "contract: a change to an internal service was refused"; exit 1
fi
echo "contract: the guard catches public breaks and lets internal services change"
