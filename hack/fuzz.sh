#!/bin/sh
# Run berth's fuzz targets, each for a bounded time: hack/fuzz.sh [SECONDS] [TARGET...]
#
# Targets (fuzz/fuzz_targets/): config_json, process_json, mount_options, signal.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly compiler: `+nightly` when
# rustup has one, otherwise the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz uses
# -Zsanitizer and friends). The seeds in fuzz/corpus/TARGET are read, never written: new
# inputs go to a scratch corpus, and crashes to fuzz/artifacts/TARGET/. MERGE=1 folds the
# scratch corpus, minimised, back into fuzz/corpus/TARGET.
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-config_json process_json mount_options signal}
cd "$(dirname "$0")/../fuzz"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
	fuzz="cargo +nightly fuzz"
else
	export RUSTC_BOOTSTRAP=1
	fuzz="cargo fuzz"
fi
scratch=${FUZZ_SCRATCH:-$(mktemp -d /tmp/berth-fuzz.XXXXXX)}
status=0
for t in $targets; do
	mkdir -p "$scratch/$t"
	echo "== $t: $secs s (scratch corpus $scratch/$t)"
	# -rss_limit_mb: a huge or deep input must fail with bounded memory.
	if ! $fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
		-max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1; then
		echo "== $t: FAILED (see fuzz/artifacts/$t/)"
		status=1
	fi
	if [ "${MERGE:-0}" = 1 ]; then
		$fuzz cmin "$t" "$scratch/$t" >/dev/null 2>&1 || true
		cp -n "$scratch/$t"/* "corpus/$t/" 2>/dev/null || true
	fi
done
exit $status
