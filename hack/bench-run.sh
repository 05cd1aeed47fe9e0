#!/bin/sh
# Time `run` of `true` for berth and runc, interleaved in one loop, on one busybox bundle.
#
#   hack/bench-run.sh [ROUNDS]      (as root; builds berth in release mode first)
#   SECCOMP=FILE hack/bench-run.sh  (with FILE as linux.seccomp, e.g.
#                                    integration/data/containers-seccomp.oci.json; needs python3)
#
# Prints the median wall time of each and the ratio berth/runc. runc is Debian's
# (apt-get install runc); it is skipped when missing.
set -eu
rounds=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
(cd "$here" && cargo build --release -q)
berth=$here/target/release/berth
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/hack/mkbundle.sh" "$work/bundle" "$berth" >/dev/null
sed -i 's|"sh"$|"true"|' "$work/bundle/config.json"
if [ -n "${SECCOMP:-}" ]; then
	python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c["linux"]["seccomp"] = json.load(open(sys.argv[2]))
json.dump(c, open(sys.argv[1], "w"), indent=1)' "$work/bundle/config.json" "$SECCOMP"
fi
runtimes="berth"
command -v runc >/dev/null && runtimes="$runtimes runc"

now() { date +%s%N; }
i=0
while [ $i -lt "$rounds" ]; do
	for rt in $runtimes; do
		case $rt in
		berth) bin=$berth ;;
		*) bin=$(command -v "$rt") ;;
		esac
		t0=$(now)
		"$bin" --root "$work/state-$rt" run --bundle "$work/bundle" "bench-$i" >/dev/null
		t1=$(now)
		echo $(((t1 - t0) / 1000)) >>"$work/$rt.us"
	done
	i=$((i + 1))
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
b=$(median "$work/berth.us")
echo "rounds: $rounds (interleaved)"
echo "berth run true: median $b ms"
if [ -f "$work/runc.us" ]; then
	r=$(median "$work/runc.us")
	echo "runc  run true: median $r ms"
	awk -v b="$b" -v r="$r" 'BEGIN { printf "ratio berth/runc: %.2f\n", b / r }'
fi
