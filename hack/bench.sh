#!/bin/sh
# How long berth takes to start containers, next to runc, crun and a bare `unshare`.
#
#   hack/bench.sh [ROUNDS]            as root; ROUNDS defaults to 30
#   OUT=FILE hack/bench.sh [ROUNDS]   where the JSON results go
#                                     (default /tmp/berth-bench-DATE.json; the path is printed)
#   PARALLEL=N PARALLEL_BATCHES=K     the parallel scenario: N runs at once, K times (100, 3)
#   SETTLE=S                          wait up to S seconds (150) for the load to fall below
#                                     half the cpus before measuring (0: do not wait)
#
# It builds berth (cargo build --release), copies the binary into a work directory under
# /tmp (so that a rebuild during the bench does not swap it), and makes three busybox
# bundles with hack/mkbundle.sh: one whose process is `true`, the same with podman's
# default seccomp profile as linux.seccomp (/usr/share/containers/seccomp.json converted by
# hack/oci-seccomp.py), and one running `sleep 100000` for exec. None sets
# linux.cgroupsPath: every runtime puts the container's cgroup where it does by default.
#
# What it measures, each runtime with its own --root state directory in the work directory:
#   run          `RT run --bundle B ID` of `true`: the median wall time, in ms
#   csd          `RT create`, `RT start`, `RT delete --force` of the same, timed as one
#   exec         `RT exec ID true` in the running `sleep` container (one per runtime)
#   run-seccomp  `run` with the seccomp profile
#   parallel     100 `run`s started at once, then all waited for: the wall time of the whole
#                batch and how many failed; 3 batches per runtime
#   rss          the peak RSS of the runtime in `run`, median and max, in MiB (1024 KiB):
#                one more, untimed `run` per runtime and round under `/usr/bin/time -f %M`
#                (ru_maxrss of the runtime and the children it reaped). Not from the timed
#                runs: python's own wait4 reports python's size there (see bench.py).
#   size         each runtime's binary (symlinks followed) and its shared libraries (ldd)
# The floor is `unshare --mount --uts --ipc --net --pid --fork true`: the namespaces and a
# fork with no runtime at all; it is measured in `run` only.
# Each round runs every scenario for every runtime, the runtimes interleaved in an order
# that rotates from round to round, so that a drift of the machine hits all of them alike.
# Timing is done by hack/bench.py: posix_spawn + wait4 between two perf_counter_ns.
#
# On a hybrid cgroup host (cgroup2 at /sys/fs/cgroup/unified) crun refuses to run, so the
# measuring part runs in a private mount namespace (unshare --mount --propagation private)
# with an empty tmpfs mounted over the cgroup2 at /sys/fs/cgroup/unified; all three
# runtimes then see a plain v1 host (crun still makes its directories in that tmpfs). The
# host's mounts are not touched. On a pure cgroup v2 or pure v1 host nothing special is
# done.
#
# Before measuring, each runtime runs each scenario once; one that is missing or fails is
# reported as skipped, with its error. The table gives the medians and the ratios
# berth/crun, berth/runc and berth/floor, then the targets with PASS/FAIL: berth <= 0.8x
# crun in run, csd and run-seccomp; berth <= 2x the floor in run; berth's peak RSS <= 3 MiB;
# its binary <= 3 MiB; no failure in berth's parallel runs. The targets do not change the
# exit status.
#
# Everything it made is removed at the end, also after an error or Ctrl-C: the containers
# (delete --force of every id that may exist, per runtime), the work directory, and the
# empty cgroup parent directories that did not exist before. It then checks that no cgroup
# directory of the bench, no mount under the work directory and no state is left, and warns
# (exit status 1) if one is. The JSON holds every sample, the machine (uname -r, nproc,
# load average at the start and end, the runtimes' versions, git HEAD) and these findings.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
self=$here/hack/bench.sh
py=$here/hack/bench.py

# The measuring part, re-executed by the part below (in the mount namespace if needed).
if [ "${1:-}" = --in-ns ]; then
	shift
	if [ "${BENCH_SETUP:-}" = hybrid ]; then
		mount -t tmpfs -o mode=0755 "berth-bench-$BENCH_TOK" /sys/fs/cgroup/unified ||
			echo "bench.sh: cannot mount a tmpfs at /sys/fs/cgroup/unified" >&2
	fi
	exec python3 "$py" "$@"
fi

usage() {
	echo "usage: [OUT=FILE.json] hack/bench.sh [ROUNDS]   (as root)" >&2
	exit 2
}
rounds=${1:-30}
case $rounds in '' | *[!0-9]*) usage ;; esac
[ "$rounds" -ge 1 ] || usage
[ $# -le 1 ] || usage
[ "$(id -u)" -eq 0 ] || {
	echo "bench.sh: run it as root" >&2
	exit 1
}
for tool in python3 unshare mount; do
	command -v "$tool" >/dev/null || {
		echo "bench.sh: $tool not found" >&2
		exit 1
	}
done
out=${OUT:-/tmp/berth-bench-$(date +%Y%m%d-%H%M%S).json}
case $out in /*) ;; *) out=$PWD/$out ;; esac

if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
	BENCH_SETUP=plain
	BENCH_SETUP_DESC="pure cgroup v2 host: nothing changed"
elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	BENCH_SETUP=hybrid
	BENCH_SETUP_DESC="hybrid host; private mount namespace with an empty tmpfs mounted over the cgroup2 at /sys/fs/cgroup/unified"
else
	BENCH_SETUP=plain
	BENCH_SETUP_DESC="cgroup v1 host: nothing changed"
fi
BENCH_TOK=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
BENCH_HERE=$here
export BENCH_SETUP BENCH_SETUP_DESC BENCH_TOK BENCH_HERE

echo "building berth: cargo build --release"
(cd "$here" && cargo build --release -q)

# Becomes hack/bench.py with ARGS where the runtimes run (exec: call it in a subshell).
in_ns() {
	if [ "$BENCH_SETUP" = hybrid ]; then
		exec unshare --mount --propagation private -- "$self" --in-ns "$@"
	else
		exec "$self" --in-ns "$@"
	fi
}

work=
child=
status=0
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	set +e
	if [ -n "$work" ] && [ -d "$work" ]; then
		# Again, in case bench.py did not get to it: delete --force whatever may be left.
		if [ -f "$work/ids.log" ]; then
			(in_ns cleanup "$work")
		fi
		if [ -f "$work/before.json" ]; then
			python3 "$py" check "$work" "$out" || status=1
		fi
		if grep -q " $work[/ ]" /proc/self/mountinfo; then
			echo "WARNING: mounts under $work remain; not removing it" >&2
			status=1
		else
			rm -rf "$work"
		fi
	fi
	[ -f "$out" ] && echo "results: $out"
	[ "$rc" -eq 0 ] && rc=$status
	exit "$rc"
}
# A trap runs only once the foreground command has ended, so the measuring part runs in
# the background and a signal is passed on to it (it then deletes what it made and writes
# what it has); the EXIT trap cleans up after it.
on_signal() {
	trap '' INT TERM HUP
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child"
	fi
	exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
work=$(mktemp -d /tmp/berth-bench.XXXXXX)

cp "$here/target/x86_64-unknown-linux-gnu/release/berth" "$work/berth"
"$here/hack/mkbundle.sh" "$work/bundle" "$work/berth" >/dev/null
seccomp=/usr/share/containers/seccomp.json
[ -f "$seccomp" ] || seccomp=$here/integration/data/containers-seccomp.json
echo "seccomp profile: $seccomp (converted by hack/oci-seccomp.py)"
BENCH_SECCOMP=$seccomp
export BENCH_SECCOMP
python3 "$here/hack/oci-seccomp.py" "$seccomp" "$work/seccomp.oci.json"
python3 "$py" bundles "$work" "$work/seccomp.oci.json"
python3 "$py" snapshot "$work"
echo "cgroups: $BENCH_SETUP_DESC"

# In the background, a subshell that becomes bench.py: $! is bench.py's pid.
in_ns measure "$work" "$rounds" "$out" &
child=$!
rc=0
wait "$child" || rc=$?
child=
exit "$rc"
