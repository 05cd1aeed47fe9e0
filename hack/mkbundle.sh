#!/bin/sh
# Make a busybox bundle: hack/mkbundle.sh DIR [berth-binary]
# The rootfs holds Debian's static busybox and its applet links; config.json comes from
# `berth spec`, with the process set to run without a terminal.
set -eu
dir=${1:?usage: hack/mkbundle.sh DIR [berth-binary]}
berth=${2:-target/x86_64-unknown-linux-gnu/debug/berth}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' && ldd "$busybox" >/dev/null 2>&1; then
	echo "$busybox is not static: apt-get install busybox-static" >&2; exit 1
fi
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" \
	"$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/root"
cp "$busybox" "$dir/rootfs/bin/busybox"
for a in $("$dir/rootfs/bin/busybox" --list); do
	[ -e "$dir/rootfs/bin/$a" ] || ln -s busybox "$dir/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$berth" spec --bundle "$dir"
# No terminal: the process writes to berth's own stdout.
sed -i 's/"terminal": true/"terminal": false/' "$dir/config.json"
