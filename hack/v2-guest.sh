#!/usr/bin/env bash
# Run a command on a pure cgroup v2 machine: Debian's kernel under QEMU (TCG), with a
# busybox initramfs made here, cgroup_no_v1=all and cgroup2 mounted at /sys/fs/cgroup with
# every controller delegated from the root.
#
#   hack/v2-guest.sh [-s DIR]... [--] [COMMAND...]
#
# The tree (and each -s DIR) is shared over virtio-9p at the same absolute path, and the
# host's /usr read-only (the dynamically linked test binaries need its libc), so a binary
# built on the host runs as it is. COMMAND runs as root in the tree's directory; its exit
# code is this script's. Without COMMAND: the cgroup integration tests
# (`cargo test --test integration --no-run`, then `<that binary> cgroups::`).
#
# Needs: linux-image-amd64 (/boot/vmlinuz-*), qemu-system-x86, busybox-static, cpio.
# /dev/kvm on this workplace cannot boot a stock kernel, so this is TCG: about 15 s a boot.
# The 9p modules of the stock kernel go into the initramfs and are loaded there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shares=("$here")
while [ $# -gt 0 ]; do
	case $1 in
	-s) shares+=("$(cd "$2" && pwd)"); shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
work=$here/target/v2-guest
mkdir -p "$work"

if [ $# -eq 0 ]; then
	bin=$(cd "$here" && cargo test --test integration --no-run --message-format=json 2>/dev/null |
		grep '"name":"integration"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
	[ -x "$bin" ] || { echo "v2-guest: could not build the integration tests" >&2; exit 1; }
	# A CARGO_TARGET_DIR outside the tree is shared too.
	case $bin in "$here"/*) ;; *) shares+=("$(dirname "$(dirname "$(dirname "$bin")")")") ;; esac
	set -- "$bin" cgroups:: --test-threads=4 --color=never
fi

kernel=${V2_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
[ -n "$kernel" ] || { echo "v2-guest: no /boot/vmlinuz-*: apt-get install linux-image-amd64" >&2; exit 1; }
kver=${kernel#/boot/vmlinuz-}
command -v qemu-system-x86_64 >/dev/null || { echo "v2-guest: apt-get install qemu-system-x86" >&2; exit 1; }
busybox=$(command -v busybox) || { echo "v2-guest: apt-get install busybox-static" >&2; exit 1; }

# --- initramfs: busybox, the 9p modules in load order, two init stages -----------------
ird=$(mktemp -d)
trap 'rm -rf "$ird"' EXIT
mkdir -p "$ird/bin" "$ird/modules" "$ird/proc" "$ird/newroot"
cp "$busybox" "$ird/bin/busybox"
for a in $("$busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ird/bin/$a"; done
order=()
add_module() {
	local m=$1 f d
	for d in "${order[@]}"; do [ "$d" = "$m" ] && return 0; done
	f=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || return 0
	case $f in /*) ;; *) return 0 ;; esac # built in
	for d in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do add_module "$d"; done
	case $f in
	*.xz) xz -dc "$f" >"$ird/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$ird/modules/$m.ko" ;;
	*) cp "$f" "$ird/modules/$m.ko" ;;
	esac
	order+=("$m")
}
for m in virtio_pci 9pnet_virtio 9p; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$ird/modules/order"

# Stage 1: an initramfs root cannot be pivot_root'ed away from, as containers must: copy
# everything to a tmpfs and switch_root there.
cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t tmpfs -o mode=755 tmpfs /newroot
/bin/busybox cp -a /bin /modules /init2 /newroot/
exec /bin/busybox switch_root /newroot /init2
EOF
cat >"$ird/init2" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mkdir -p /proc /sys /dev /tmp /root /etc /usr /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control
done
for m in $(cat /modules/order); do insmod /modules/$m.ko; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro usr /usr
ln -s usr/lib /lib
ln -s usr/lib64 /lib64
echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
echo 'root:x:0:' >/etc/group
hostname v2guest
set -- $(cat /proc/cmdline)
for a; do
	case $a in
	berth.share=*)
		s=${a#berth.share=}
		mkdir -p "${s#*:}"
		mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap "${s%%:*}" "${s#*:}"
		;;
	berth.run=*) run=${a#berth.run=} ;;
	esac
done
echo "v2-guest: $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
cd "$(dirname "$(dirname "$(dirname "$run")")")"
sh "$run"
echo $? >"$(dirname "$run")/rc"
sync
poweroff -f
EOF
chmod 755 "$ird/init" "$ird/init2"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

# --- the command, the shares, the boot ----------------------------------------------------
run=$work/run.sh
{
	echo "cd '$here' || exit 1"
	printf 'exec'
	printf " '%s'" "$@"
	echo
} >"$run"
rm -f "$work/rc"
args=(console=ttyS0 quiet loglevel=1 panic=-1 cgroup_no_v1=all "berth.run=$run")
virtfs=(-virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on,id=usr")
i=0
for s in "${shares[@]}"; do
	virtfs+=(-virtfs "local,path=$s,mount_tag=s$i,security_model=passthrough,id=s$i")
	args+=("berth.share=s$i:$s")
	i=$((i + 1))
done
start=$(date +%s)
timeout "${V2_TIMEOUT:-1500}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 \
	-m "${V2_MEMORY:-2048}" -display none -monitor none -serial stdio -no-reboot -nic none \
	-kernel "$kernel" -initrd "$work/initramfs.gz" -append "${args[*]}" "${virtfs[@]}" </dev/null ||
	true
rc=$(cat "$work/rc" 2>/dev/null || echo 125)
echo "v2-guest: exit code $rc, $(($(date +%s) - start)) s in the guest ($kver, TCG)"
exit "$rc"
