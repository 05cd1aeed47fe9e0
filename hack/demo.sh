#!/bin/sh
# Run one container from a fresh busybox bundle: hack/demo.sh [berth-binary]
set -eu
berth=$(realpath "${1:-target/x86_64-unknown-linux-gnu/debug/berth}")
here=$(dirname "$0")
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/mkbundle.sh" "$work/bundle" "$berth"
# The container's command: say who and where it is.
sed -i 's|"sh"$|"sh", "-c", "echo hello from berth: pid $$ in container $(hostname), user $(id -un)"|' "$work/bundle/config.json"
"$berth" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
