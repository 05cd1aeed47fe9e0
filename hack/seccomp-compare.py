#!/usr/bin/env python3
"""Compare the seccomp filters berth and runc load for one profile (as root).

    hack/seccomp-compare.py [PROFILE]   (default: integration/data/containers-seccomp.oci.json)

Runs `sleep` in a busybox container with each runtime, reads the filter the kernel holds
for the container's process (ptrace PTRACE_SECCOMP_GET_FILTER), and runs it in a small
classic-BPF interpreter: its length, and how many instructions a few common x86_64 calls
execute. Needs target/x86_64-unknown-linux-gnu/release/berth, runc, busybox-static.
"""
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH = os.path.join(HERE, "target/x86_64-unknown-linux-gnu/release/berth")
PROFILE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HERE, "integration/data/containers-seccomp.oci.json")
CALLS = [("read", 0), ("write", 1), ("futex", 202), ("epoll_wait", 232)]
AUDIT_ARCH_X86_64 = 0xC000003E

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SECCOMP_GET_FILTER = 16, 17, 0x420C


def dump(pid):
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace attach")
    os.waitpid(pid, 0x40000000)  # __WALL
    try:
        n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(0), None)
        if n < 0:
            raise OSError(ctypes.get_errno(), "PTRACE_SECCOMP_GET_FILTER")
        buf = ctypes.create_string_buffer(8 * n)
        libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(0), buf)
        return [struct.unpack_from("<HBBI", buf.raw, 8 * i) for i in range(n)]
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def run_bpf(prog, nr, arch=AUDIT_ARCH_X86_64, args=(0,) * 6):
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    a = x = 0
    mem = [0] * 16
    pc = steps = 0
    while True:
        code, jt, jf, k = prog[pc]
        steps += 1
        cls = code & 7
        if cls == 0:  # ld
            if code == 0x20:
                a = struct.unpack_from("<I", data, k)[0]
            elif code == 0x00:
                a = k
            elif code == 0x60:
                a = mem[k]
            else:
                raise ValueError(hex(code))
            pc += 1
        elif cls == 1:  # ldx
            x = k if code == 0x01 else mem[k]
            pc += 1
        elif cls == 2:
            mem[k] = a
            pc += 1
        elif cls == 3:
            mem[k] = x
            pc += 1
        elif cls == 4:  # alu
            op, src = code & 0xF0, (x if code & 8 else k)
            a = {0x00: a + src, 0x10: a - src, 0x20: a * src, 0x50: a & src,
                 0x40: a | src, 0x60: a << src, 0x70: a >> src, 0xA0: a ^ src}[op] & 0xFFFFFFFF
            pc += 1
        elif cls == 5:  # jmp
            op, src = code & 0xF0, (x if code & 8 else k)
            if op == 0x00:
                pc += 1 + k
                continue
            c = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: a & src != 0}[op]
            pc += 1 + (jt if c else jf)
        elif cls == 6:
            return (k if code == 0x06 else a), steps
        elif cls == 7:
            if code == 0x07:
                x = a
            else:
                a = x
            pc += 1


def container(runtime, bundle, cid, root):
    subprocess.run([runtime, "--root", root, "run", "-d", "--bundle", bundle, cid],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    st = json.loads(subprocess.run([runtime, "--root", root, "state", cid], check=True,
                                   capture_output=True).stdout)
    return st["pid"]


def main():
    work = tempfile.mkdtemp(prefix="berth-cmp.")
    bundle = os.path.join(work, "bundle")
    subprocess.run([os.path.join(HERE, "hack/mkbundle.sh"), bundle, BERTH], check=True,
                   stdout=subprocess.DEVNULL)
    cfg = json.load(open(os.path.join(bundle, "config.json")))
    cfg["process"]["args"] = ["sleep", "30"]
    cfg["linux"]["seccomp"] = json.load(open(PROFILE))
    json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))
    rows = []
    for rt in [BERTH, "runc"]:
        root = os.path.join(work, "state-" + os.path.basename(rt))
        pid = container(rt, bundle, "cmp", root)
        try:
            prog = dump(pid)
        finally:
            subprocess.run([rt, "--root", root, "delete", "--force", "cmp"])
        steps = []
        for name, nr in CALLS:
            ret, n = run_bpf(prog, nr)
            assert ret & 0xFFFF0000 == 0x7FFF0000, (rt, name, hex(ret))
            steps.append(n)
        worst = max(run_bpf(prog, nr, args=(2**64 - 1,) * 6)[1] for nr in range(0, 480))
        rows.append((os.path.basename(rt), len(prog), steps, worst))
    print("| runtime | BPF length | " + " | ".join(n for n, _ in CALLS) + " | worst x86_64 path |")
    print("|---|---|" + "---|" * len(CALLS) + "---|")
    for name, length, steps, worst in rows:
        print(f"| {name} | {length} | " + " | ".join(map(str, steps)) + f" | {worst} |")
    subprocess.run(["rm", "-rf", work])


main()
