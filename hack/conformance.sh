#!/bin/sh
# Run OCI runtime-tools validation tests against a runtime and summarise them.
#
#   hack/conformance.sh RUNTIME_TOOLS_DIR [RUNTIME] [test ...]
#
# RUNTIME_TOOLS_DIR is a checkout of opencontainers/runtime-tools in which
# `make runtimetest validation-executables` has already been run (this script does not
# build it). RUNTIME defaults to this tree's target/x86_64-unknown-linux-gnu/release/berth, else target/x86_64-unknown-linux-gnu/debug/berth.
# The tests run from the tree root, as they require. A .t exits 0 even when its cases fail:
# the summary counts the TAP lines.
set -eu
rt=${1:?usage: hack/conformance.sh RUNTIME_TOOLS_DIR [RUNTIME] [test ...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
runtime=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$runtime" ]; then
	runtime=$here/target/x86_64-unknown-linux-gnu/release/berth
	[ -x "$runtime" ] || runtime=$here/target/x86_64-unknown-linux-gnu/debug/berth
fi
runtime=$(realpath "$runtime")
tests=${*:-create state start kill kill_no_effect delete pidfile hostname process}
cd "$rt"
total_ok=0 total_bad=0
for t in $tests; do
	bin=validation/$t/$t.t
	[ -x "$bin" ] || { echo "$t: $bin not built" >&2; total_bad=$((total_bad + 1)); continue; }
	out=$(RUNTIME=$runtime timeout 300 "$bin" 2>&1 || true)
	ok=$(printf '%s\n' "$out" | grep -c '^ok' || true)
	bad=$(printf '%s\n' "$out" | grep -c '^not ok' || true)
	plan=$(printf '%s\n' "$out" | grep -E '^1\.\.[0-9]+' || echo "no plan")
	printf '%-16s %4s ok %3s not ok  (%s)\n' "$t" "$ok" "$bad" "$plan"
	printf '%s\n' "$out" | grep -A6 '^not ok' | sed 's/^/    /' || true
	total_ok=$((total_ok + ok))
	total_bad=$((total_bad + bad))
done
echo "$total_ok passed, $total_bad failed"
