#!/usr/bin/env python3
"""Turn a container engine's seccomp profile (containers-common's seccomp.json, with
archMap, includes and excludes) into config.json's linux.seccomp, as podman does for a
container on amd64 with the given capabilities.

    hack/oci-seccomp.py IN.json OUT.json [CAP ...]   (default: podman's default caps)
"""
import json
import sys

PODMAN_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT",
]
ARCH = "amd64"
NATIVE = "SCMP_ARCH_X86_64"


def convert(p, caps):
    out = {"defaultAction": p["defaultAction"]}
    if "defaultErrnoRet" in p:
        out["defaultErrnoRet"] = p["defaultErrnoRet"]
    arches = []
    for m in p.get("archMap") or []:
        if m["architecture"] == NATIVE:
            arches = [m["architecture"]] + m.get("subArchitectures", [])
    out["architectures"] = arches or p.get("architectures", [])
    syscalls = []
    for s in p["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and ARCH not in inc["arches"]:
            continue
        if exc.get("arches") and ARCH in exc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        r = {"names": s["names"], "action": s["action"]}
        if s.get("args"):
            r["args"] = s["args"]
        if s.get("errnoRet") is not None:
            r["errnoRet"] = s["errnoRet"]
        syscalls.append(r)
    out["syscalls"] = syscalls
    return out


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    caps = sys.argv[3:] or PODMAN_CAPS
    with open(src) as f:
        p = json.load(f)
    with open(dst, "w") as f:
        json.dump(convert(p, caps), f, indent=1)
        f.write("\n")
