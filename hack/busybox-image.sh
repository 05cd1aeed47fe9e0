#!/bin/sh
# Build a one-layer busybox image without a registry: hack/busybox-image.sh OUT.tar [NAME]
#
# OUT.tar is both an OCI image layout (oci-layout, index.json, blobs/sha256/…) and a
# docker-archive (manifest.json naming the same blobs), so one file loads everywhere:
#   ctr image import OUT.tar       (index.json; name from io.containerd.image.name)
#   podman load -i OUT.tar         (docker-archive; name from RepoTags)
#   docker load -i OUT.tar         (Docker 20.10 reads manifest.json only)
# NAME defaults to docker.io/library/busybox:berth. The layer holds Debian's static
# busybox with its applet links in /bin, /etc/passwd and /etc/group, and is reproducible
# (sorted names, mtime 0, owner 0): the same busybox gives the same digests.
# Needs: busybox-static, tar, jq, sha256sum.
set -eu
out=${1:?usage: hack/busybox-image.sh OUT.tar [NAME]}
name=${2:-docker.io/library/busybox:berth}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' && ldd "$busybox" >/dev/null 2>&1; then
	echo "$busybox is not static: apt-get install busybox-static" >&2; exit 1
fi
for t in tar jq sha256sum; do
	command -v "$t" >/dev/null || { echo "$t not found: apt-get install $t" >&2; exit 1; }
done

# Debian and Go/OCI name the common architectures alike (amd64, arm64, ppc64el aside).
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
img=$work/image
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/sys" "$root/dev" \
	"$img/blobs/sha256"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

# A blob named by its digest; prints the hex digest.
blob() {
	d=$(sha256sum "$1" | cut -d' ' -f1)
	mv "$1" "$img/blobs/sha256/$d"
	echo "$d"
}
size() { wc -c < "$img/blobs/sha256/$1" | tr -d ' '; }

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$root" -cf "$work/layer.tar" .
layer=$(blob "$work/layer.tar")

jq -n --arg diff "sha256:$layer" --arg arch "$arch" '{
	architecture: $arch, os: "linux", created: "1970-01-01T00:00:00Z",
	config: {
		Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
		Cmd: ["sh"]
	},
	rootfs: { type: "layers", diff_ids: [$diff] },
	history: [{ created: "1970-01-01T00:00:00Z", created_by: "hack/busybox-image.sh" }]
}' > "$work/config.json"
config=$(blob "$work/config.json")

jq -n --arg c "sha256:$config" --argjson cs "$(size "$config")" \
	--arg l "sha256:$layer" --argjson ls "$(size "$layer")" '{
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
	layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls }]
}' > "$work/manifest.json"
manifest=$(blob "$work/manifest.json")

jq -n --arg m "sha256:$manifest" --argjson ms "$(size "$manifest")" --arg name "$name" --arg arch "$arch" '{
	schemaVersion: 2,
	manifests: [{
		mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
		platform: { architecture: $arch, os: "linux" },
		annotations: {
			"io.containerd.image.name": $name,
			"org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))
		}
	}]
}' > "$img/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$img/oci-layout"
jq -n --arg c "blobs/sha256/$config" --arg l "blobs/sha256/$layer" --arg name "$name" \
	'[{ Config: $c, RepoTags: [$name], Layers: [$l] }]' > "$img/manifest.json"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$img" -cf "$out.tmp" .
mv "$out.tmp" "$out"
