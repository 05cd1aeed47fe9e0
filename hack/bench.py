#!/usr/bin/env python3
"""The measuring half of hack/bench.sh (python3 stdlib only). bench.sh calls it as:

    bench.py bundles WORK SECCOMP.json      edit WORK/bundle's config.json (process `true`, no
                                            linux.cgroupsPath) and copy it to WORK/bundle-seccomp
                                            (with linux.seccomp) and WORK/bundle-sleep
    bench.py snapshot WORK                  note the host's cgroup directories and /run entries
    bench.py measure WORK ROUNDS OUT.json   warm up, measure, print the table, write the JSON
    bench.py cleanup WORK                   delete --force every container the bench may have
                                            left (idempotent; run again by bench.sh on exit)
    bench.py check WORK OUT.json            look for leftovers (cgroup directories, mounts,
                                            state), remove the empty cgroup parents the bench
                                            made, add the findings to OUT.json

Settings come from the environment that bench.sh exports: BENCH_TOK (container ids are
bench<TOK>-...), BENCH_HERE (the source tree), BENCH_SETUP (hybrid or plain), BENCH_SECCOMP
(the profile used), PARALLEL, PARALLEL_BATCHES.

Timing: os.posix_spawn, then os.wait4 on that pid, with time.perf_counter_ns around both; the
runtime's stdin and stdout are /dev/null, its stderr a file read only when it fails. Every
child gets its own process group, so a Ctrl-C reaches the bench and not the runtime in the
middle of its work; the bench then waits for what is running and deletes what it made.

Peak RSS: the ru_maxrss that this process gets from wait4 is useless here: posix_spawn
vforks, and exec records the RSS high-water mark of the mm it leaves (python's, ~15 MiB)
in the child's maxrss, so every runtime would show python's size (a fork copies python's
anonymous pages: the same). So each round also runs `run` once per runtime, untimed, under
`/usr/bin/time -f %M`: GNU time is small and forks, so what it reports is the runtime's own
peak (and that of the children it reaped: the container's init), within a few KiB (a tiny
static binary shows 548 KiB through it, as through a minimal C fork+exec+wait4).
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

CONTAINER_RTS = ["berth", "runc", "crun"]
ALL_RTS = CONTAINER_RTS + ["floor"]
SCENARIOS = ["run", "csd", "exec", "run-seccomp"]
FLOOR_ARGV = ["--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "true"]
RUN_TIMEOUT = 60.0  # seconds for one timed unit
PAR_TIMEOUT = 600.0  # seconds for one parallel batch
GNU_TIME = "/usr/bin/time"
# Signals a child gets back at their default (python ignores SIGPIPE and SIGXFSZ; the bench
# may ignore SIGINT and SIGTERM while it cleans up).
SIGDEF = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE,
          signal.SIGXFSZ)
CG = "/sys/fs/cgroup"
MIB = 1024  # KiB in a MiB (ru_maxrss is in KiB)
TARGETS_RATIO_CRUN = 0.8
TARGET_RATIO_FLOOR = 2.0
TARGET_MIB = 3.0


class Timeout(Exception):
    pass


def _on_alarm(_sig, _frame):
    raise Timeout()


def _on_term(_sig, _frame):
    raise KeyboardInterrupt()


def ignore_signals():
    """From here on, cleaning up: a second Ctrl-C must not cut it short."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def first_line(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        out = (p.stdout or p.stderr).strip().splitlines()
        return out[0] if out else ""
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


def ldd_names(path):
    """Shared libraries of PATH as names (libc.so.6, ld-linux-x86-64.so.2, …); [] if static."""
    try:
        p = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return []  # "not a dynamic executable"
    names = []
    for line in p.stdout.splitlines():
        tok = line.strip().split(" ")[0]
        if tok:
            names.append(os.path.basename(tok))
    return names


def ms(ns):
    return ns / 1e6


def summary(values_ns):
    if not values_ns:
        return {"n": 0}
    v = sorted(values_ns)
    return {
        "n": len(v),
        "median_ms": round(ms(statistics.median(v)), 3),
        "mean_ms": round(ms(statistics.fmean(v)), 3),
        "min_ms": round(ms(v[0]), 3),
        "p90_ms": round(ms(v[min(len(v) - 1, int(0.9 * len(v)))]), 3),
        "max_ms": round(ms(v[-1]), 3),
        "stdev_ms": round(ms(statistics.stdev(v)), 3) if len(v) > 1 else 0.0,
    }


def read_err(path, limit=600):
    try:
        with open(path, errors="replace") as f:
            return f.read(limit).strip()
    except OSError:
        return ""


def cgroup_mounts():
    """Mount points of the cgroup hierarchies this process sees (the last mount wins)."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            mp = pre.split(" ")[4]
            fstype = post.split(" ")[0]
            if mp == CG or mp.startswith(CG + "/"):
                mounts[mp] = fstype
    return sorted(mp for mp, t in mounts.items() if t in ("cgroup", "cgroup2"))


def cgroup_dirs():
    """Every directory of every cgroup hierarchy mounted under /sys/fs/cgroup."""
    out = []
    for root in cgroup_mounts():
        for d, subdirs, _ in os.walk(root):
            out.append(d)
            if d.count("/") - root.count("/") >= 8:
                subdirs[:] = []
    return out


def hierarchy_root(path, roots):
    best = None
    for r in roots:
        if path == r or path.startswith(r + "/"):
            if best is None or len(r) > len(best):
                best = r
    return best


# ---------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work):
        self.work = work
        self.tok = os.environ.get("BENCH_TOK", "x")
        self.prefix = f"bench{self.tok}"
        self.here = os.environ.get("BENCH_HERE", os.getcwd())
        self.env = dict(os.environ)
        self.paths = {
            "berth": os.path.join(work, "berth"),
            "runc": shutil.which("runc"),
            "crun": shutil.which("crun"),
            "floor": shutil.which("unshare"),
        }
        self.roots = {rt: os.path.join(work, f"state-{rt}") for rt in CONTAINER_RTS}
        self.bundles = {
            "run": os.path.join(work, "bundle"),
            "csd": os.path.join(work, "bundle"),
            "run-seccomp": os.path.join(work, "bundle-seccomp"),
            "sleep": os.path.join(work, "bundle-sleep"),
        }
        self.errdir = os.path.join(work, "err")
        os.makedirs(self.errdir, exist_ok=True)
        self.inflight = set()
        self.pending = {rt: set() for rt in CONTAINER_RTS}
        self.log_fd = os.open(os.path.join(work, "ids.log"),
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    # -- ids that may exist: noted in memory and in WORK/ids.log, for cleanup ----------------
    def note(self, rt, cid):
        self.pending[rt].add(cid)
        os.write(self.log_fd, f"+ {rt} {cid}\n".encode())

    def done(self, rt, cid):
        self.pending[rt].discard(cid)
        os.write(self.log_fd, f"- {rt} {cid}\n".encode())

    # -- spawning ------------------------------------------------------------------------------
    def spawn(self, argv, err):
        fa = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        ]
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=fa, setpgroup=0,
                             setsigdef=SIGDEF)
        self.inflight.add(pid)
        return pid

    def reap(self, pid):
        _, status, ru = os.wait4(pid, 0)
        self.inflight.discard(pid)
        return os.waitstatus_to_exitcode(status), ru.ru_maxrss

    def kill_inflight(self, grace=10.0):
        """Wait up to GRACE seconds for the children still running, then SIGKILL them."""
        end = time.monotonic() + grace
        for pid in list(self.inflight):
            while True:
                try:
                    p, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if p:
                    break
                if time.monotonic() > end:
                    for target in (-pid, pid):
                        try:
                            os.kill(target, signal.SIGKILL)
                        except OSError:
                            pass
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
                    break
                time.sleep(0.02)
            self.inflight.discard(pid)

    def seq(self, steps, timeout=RUN_TIMEOUT):
        """Run STEPS (argv, err) one after the other, stopping at the first failure; time them
        as one unit. Returns (total_ns, [(ns, rc, maxrss)...], err of the failed step)."""
        out = []
        failed_err = None
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            t0 = time.perf_counter_ns()
            for argv, err in steps:
                s0 = time.perf_counter_ns()
                pid = self.spawn(argv, err)
                rc, rss = self.reap(pid)
                out.append((time.perf_counter_ns() - s0, rc, rss))
                if rc != 0:
                    failed_err = err
                    break
            total = time.perf_counter_ns() - t0
        except Timeout:
            self.kill_inflight(grace=0)
            out.append((None, "timeout", 0))
            return None, out, steps[len(out) - 1][1]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return total, out, failed_err

    def untimed(self, argv):
        """Run ARGV to its end, not timed; returns (rc, stderr)."""
        err = os.path.join(self.errdir, "untimed")
        total, out, _ = self.seq([(argv, err)])
        rc = out[-1][1]
        return rc, ("" if rc == 0 else read_err(err))

    # -- commands -----------------------------------------------------------------------------
    def rt_argv(self, rt, *args):
        return [self.paths[rt], "--root", self.roots[rt], *args]

    def force_delete(self, rt, cid):
        rc, err = self.untimed(self.rt_argv(rt, "delete", "--force", cid))
        self.done(rt, cid)
        return rc, err

    def state_ids(self, rt):
        try:
            return sorted(e for e in os.listdir(self.roots[rt])
                          if e.startswith(self.prefix)
                          and os.path.isdir(os.path.join(self.roots[rt], e)))
        except OSError:
            return []

    def cleanup(self):
        """delete --force what may still exist: ids in flight, in the log, in the state dirs."""
        self.kill_inflight()
        logged = {rt: set() for rt in CONTAINER_RTS}
        try:
            with open(os.path.join(self.work, "ids.log")) as f:
                for line in f:
                    op, rt, cid = line.split()
                    if rt in logged:
                        (logged[rt].add if op == "+" else logged[rt].discard)(cid)
        except (OSError, ValueError):
            pass
        left = {}
        for rt in CONTAINER_RTS:
            ids = set(self.pending[rt]) | logged[rt] | set(self.state_ids(rt))
            if not ids or not self.paths[rt]:
                continue
            for cid in sorted(ids):
                self.force_delete(rt, cid)
            still = self.state_ids(rt)
            if still:
                left[rt] = still
        return left


# ---------------------------------------------------------------------------------------
class Measure(Bench):
    def __init__(self, work, rounds, out):
        super().__init__(work)
        self.rounds = rounds
        self.out = out
        self.par_n = env_int("PARALLEL", 100)
        self.par_batches = env_int("PARALLEL_BATCHES", 3)
        self.skipped = {}  # rt -> error (the runtime is not measured at all)
        self.scn_skipped = {}  # "scenario/rt" -> error
        self.samples = {s: {rt: [] for rt in ALL_RTS} for s in SCENARIOS}
        self.parallel = {rt: [] for rt in CONTAINER_RTS}
        self.rss = {rt: [] for rt in ALL_RTS}
        self.have_time = os.access(GNU_TIME, os.X_OK)
        self.exec_ids = {}
        self.cg_seen = {}  # rt -> the cgroup directories of its exec container
        self.n = 0
        self.meta = {}

    def new_id(self, rt, tag):
        self.n += 1
        return f"{self.prefix}-{rt}-{tag}-{self.n}"

    def err(self, rt, tag=""):
        return os.path.join(self.errdir, f"{rt}{tag}")

    def rts_for(self, scn):
        rts = ALL_RTS if scn == "run" else CONTAINER_RTS
        return [rt for rt in rts if rt not in self.skipped
                and f"{scn}/{rt}" not in self.scn_skipped]

    # -- one timed unit per scenario; returns a sample dict ------------------------------------
    def one(self, scn, rt, rnd):
        err = self.err(rt)
        if scn in ("run", "run-seccomp"):
            if rt == "floor":
                cid = None
                argv = [self.paths["floor"], *FLOOR_ARGV]
            else:
                cid = self.new_id(rt, "r" if scn == "run" else "s")
                argv = self.rt_argv(rt, "run", "--bundle", self.bundles[scn], cid)
                self.note(rt, cid)
            total, steps, ferr = self.seq([(argv, err)])
            sample = {"round": rnd, "ns": total, "rc": steps[-1][1]}
        elif scn == "csd":
            cid = self.new_id(rt, "c")
            self.note(rt, cid)
            total, steps, ferr = self.seq([
                (self.rt_argv(rt, "create", "--bundle", self.bundles["csd"], cid), err),
                (self.rt_argv(rt, "start", cid), err),
                (self.rt_argv(rt, "delete", "--force", cid), err),
            ])
            rc = 0 if len(steps) == 3 and steps[-1][1] == 0 else steps[-1][1]
            sample = {"round": rnd, "ns": total, "rc": rc,
                      "steps_ns": [s[0] for s in steps]}
        else:  # exec
            cid = None
            total, steps, ferr = self.seq(
                [(self.rt_argv(rt, "exec", self.exec_ids[rt], "true"), err)])
            sample = {"round": rnd, "ns": total, "rc": steps[-1][1]}
        if sample["rc"] != 0:
            sample["ns"] = None
            sample["stderr"] = read_err(ferr or err)
            if cid:
                sample["id"] = cid
        if cid:
            if sample["rc"] == 0:
                self.done(rt, cid)
            else:
                self.force_delete(rt, cid)
        return sample

    def rss_run(self, rt, rnd):
        """`run` under GNU time (untimed): the peak RSS in KiB of the runtime process."""
        out = os.path.join(self.errdir, "rss")
        if rt == "floor":
            cid, argv = None, [self.paths["floor"], *FLOOR_ARGV]
        else:
            cid = self.new_id(rt, "m")
            argv = self.rt_argv(rt, "run", "--bundle", self.bundles["run"], cid)
            self.note(rt, cid)
        err = self.err(rt)
        try:
            os.unlink(out)
        except FileNotFoundError:
            pass
        _, steps, _ = self.seq([([GNU_TIME, "-f", "%M", "-o", out, *argv], err)])
        rc = steps[-1][1]
        sample = {"round": rnd, "rc": rc, "maxrss_kib": None}
        try:
            with open(out) as f:
                sample["maxrss_kib"] = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
        if rc != 0:
            sample["stderr"] = read_err(err)
        if cid:
            if rc == 0:
                self.done(rt, cid)
            else:
                self.force_delete(rt, cid)
        return sample

    # -- warm-up: every runtime must do each scenario once, else it is skipped ------------------
    def warm_up(self):
        for rt in ALL_RTS:
            if not self.paths[rt] or not os.access(self.paths[rt], os.X_OK):
                self.skipped[rt] = "not installed"
        for rt in ALL_RTS:
            if rt in self.skipped:
                continue
            s = self.one("run", rt, -1)
            if s["rc"] != 0:
                self.skipped[rt] = f"warm-up run failed (exit {s['rc']}): {s.get('stderr', '')}"
            print(f"  warm-up {rt:6} run: " + ("ok" if s["rc"] == 0 else
                  f"FAILED, skipped: {self.skipped[rt]}"), flush=True)
        for rt in CONTAINER_RTS:
            if rt in self.skipped:
                continue
            # exec: one `sleep 100000` container per runtime, for the whole bench.
            cid = f"{self.prefix}-{rt}-exec"
            self.note(rt, cid)
            rc, e = self.untimed(self.rt_argv(rt, "create", "--bundle",
                                              self.bundles["sleep"], cid))
            if rc == 0:
                rc, e = self.untimed(self.rt_argv(rt, "start", cid))
            if rc != 0:
                self.scn_skipped[f"exec/{rt}"] = f"create/start of the sleep container: {e}"
                self.force_delete(rt, cid)
            else:
                self.exec_ids[rt] = cid
                self.cg_seen[rt] = [d for d in cgroup_dirs() if os.path.basename(d) == cid]
            for scn in ("csd", "exec", "run-seccomp"):
                if f"{scn}/{rt}" in self.scn_skipped:
                    print(f"  warm-up {rt:6} {scn}: FAILED, skipped: "
                          f"{self.scn_skipped[scn + '/' + rt]}", flush=True)
                    continue
                s = self.one(scn, rt, -1)
                if s["rc"] != 0:
                    self.scn_skipped[f"{scn}/{rt}"] = (
                        f"warm-up failed (exit {s['rc']}): {s.get('stderr', '')}")
                print(f"  warm-up {rt:6} {scn}: " + ("ok" if s["rc"] == 0 else
                      f"FAILED, skipped: {self.scn_skipped[scn + '/' + rt]}"), flush=True)

    # -- parallel: N runs at once --------------------------------------------------------------
    def parallel_batch(self, rt, batch):
        ids = [self.new_id(rt, f"p{batch}") for _ in range(self.par_n)]
        for cid in ids:
            self.note(rt, cid)
        errs = [self.err(rt, f"-par-{i}") for i in range(self.par_n)]
        argvs = [self.rt_argv(rt, "run", "--bundle", self.bundles["run"], cid) for cid in ids]
        results = []
        timed_out = False
        signal.setitimer(signal.ITIMER_REAL, PAR_TIMEOUT)
        try:
            t0 = time.perf_counter_ns()
            pids = [self.spawn(a, e) for a, e in zip(argvs, errs)]
            for pid in pids:
                results.append(self.reap(pid))
            wall = time.perf_counter_ns() - t0
        except Timeout:
            timed_out = True
            self.kill_inflight(grace=0)
            wall = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        fails = [i for i in range(self.par_n) if i >= len(results) or results[i][0] != 0]
        sample = {"batch": batch, "n": self.par_n, "wall_ns": wall, "timed_out": timed_out,
                  "failures": len(fails),
                  "exit_codes": [r[0] for r in results]}
        if fails:
            sample["stderr_sample"] = read_err(errs[fails[0]])
            sample["failed_ids"] = [ids[i] for i in fails]
        for i, cid in enumerate(ids):
            if i in fails:
                self.force_delete(rt, cid)
            else:
                self.done(rt, cid)
        return sample

    # -- the whole measurement --------------------------------------------------------------
    def machine(self):
        def git(*a):
            try:
                return subprocess.run(["git", "-C", self.here, *a], capture_output=True,
                                      text=True, timeout=30).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return ""
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((ln.split(":", 1)[1].strip() for ln in f
                            if ln.startswith("model name")), "")
        except OSError:
            pass
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "uname_r": os.uname().release,
            "nproc": len(os.sched_getaffinity(0)),
            "cpu": cpu,
            "hostname": os.uname().nodename,
            "python": sys.version.split()[0],
            "git_head": git("rev-parse", "HEAD"),
            "git_uncommitted": git("status", "--porcelain", "--untracked-files=no").splitlines(),
            "cgroup_setup": os.environ.get("BENCH_SETUP_DESC", ""),
            "cgroup_mounts_in_bench": cgroup_mounts(),
            "seccomp_profile": os.environ.get("BENCH_SECCOMP", ""),
        }

    def runtimes_info(self):
        info = {}
        for rt in ALL_RTS:
            p = self.paths[rt]
            d = {"path": p}
            if p and os.path.exists(p):
                real = os.path.realpath(p)
                d["realpath"] = real
                d["size_bytes"] = os.stat(real).st_size
                d["ldd"] = ldd_names(real)
                d["version"] = first_line([p, "--version"])
            if rt == "berth":
                d["built_from"] = os.path.join(self.here, "target/x86_64-unknown-linux-gnu/release/berth")
            if rt == "floor":
                d["command"] = ["unshare", *FLOOR_ARGV]
            if rt in self.skipped:
                d["skipped"] = self.skipped[rt]
            info[rt] = d
        return info

    def settle(self):
        """Wait (up to SETTLE seconds, default 150) for the 1-minute load to fall below half
        the cpus. What a previous run left behind, above all the kernel tearing down the
        network namespaces of its 300 parallel containers, goes on for a minute or more
        and slows every container start meanwhile, unevenly across the rounds."""
        limit = env_int("SETTLE", 150)
        end = time.monotonic() + limit
        waited = False
        while time.monotonic() < end:
            with open("/proc/loadavg") as f:
                load = float(f.read().split()[0])
            if load < 0.5 * os.cpu_count():
                break
            if not waited:
                print(f"  waiting for the machine to settle (load {load}; SETTLE=0 skips)",
                      flush=True)
                waited = True
            time.sleep(2)

    def run(self):
        self.settle()
        with open("/proc/loadavg") as f:
            load_start = f.read().split()[:3]
        self.meta = self.machine()
        self.meta["loadavg_start"] = load_start
        rinfo = self.runtimes_info()
        print(f"berth bench: {self.rounds} rounds, kernel {self.meta['uname_r']}, "
              f"{self.meta['nproc']} cpus, load {' '.join(load_start)}", flush=True)
        if float(load_start[0]) > 0.5 * self.meta["nproc"]:
            print(f"note: the machine is busy (load {load_start[0]} on {self.meta['nproc']} "
                  "cpus): expect noisy numbers", flush=True)
        interrupted = False
        try:
            self.warm_up()
            if not self.have_time:
                print(f"  {GNU_TIME} not found: no RSS measurement", flush=True)
            print(f"  measuring {self.rounds} rounds of {', '.join(SCENARIOS)}"
                  f"{', rss' if self.have_time else ''}", flush=True)
            tty = sys.stderr.isatty()
            for rnd in range(self.rounds):
                if tty:
                    print(f"\r  round {rnd + 1}/{self.rounds}", end="", file=sys.stderr,
                          flush=True)
                for scn in SCENARIOS + (["rss"] if self.have_time else []):
                    rts = self.rts_for("run" if scn == "rss" else scn)
                    k = rnd % len(rts) if rts else 0
                    for rt in rts[k:] + rts[:k]:
                        if scn == "rss":
                            self.rss[rt].append(self.rss_run(rt, rnd))
                        else:
                            self.samples[scn][rt].append(self.one(scn, rt, rnd))
            if tty:
                print(file=sys.stderr)
            rts = [rt for rt in CONTAINER_RTS if rt not in self.skipped]
            print(f"  measuring {self.par_batches} batches of {self.par_n} runs at once per "
                  "runtime", flush=True)
            for b in range(self.par_batches):
                k = b % len(rts) if rts else 0
                for rt in rts[k:] + rts[:k]:
                    self.parallel[rt].append(self.parallel_batch(rt, b))
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: cleaning up", file=sys.stderr)
        finally:
            ignore_signals()
            for rt, cid in list(self.exec_ids.items()):
                self.force_delete(rt, cid)
            left = self.cleanup()
            with open("/proc/loadavg") as f:
                self.meta["loadavg_end"] = f.read().split()[:3]
        result = self.report(rinfo, interrupted, left)
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.out)
        return 130 if interrupted else 0

    # -- results ------------------------------------------------------------------------------
    def report(self, rinfo, interrupted, left):
        scen = {}
        med = {}
        for scn in SCENARIOS:
            scen[scn] = {}
            for rt in (ALL_RTS if scn == "run" else CONTAINER_RTS):
                ss = self.samples[scn][rt]
                skip = self.skipped.get(rt) or self.scn_skipped.get(f"{scn}/{rt}")
                if not ss and not skip:
                    continue
                ok = [s["ns"] for s in ss if s["rc"] == 0 and s["ns"] is not None]
                d = summary(ok)
                d["failures"] = sum(1 for s in ss if s["rc"] != 0)
                if skip:
                    d["skipped"] = skip
                d["samples"] = ss
                scen[scn][rt] = d
                if ok:
                    med[(scn, rt)] = d["median_ms"]
        par = {}
        for rt in CONTAINER_RTS:
            bs = self.parallel[rt]
            if not bs:
                continue
            walls = [b["wall_ns"] for b in bs if b["wall_ns"] is not None]
            par[rt] = {"runs_per_batch": self.par_n, "batches": bs,
                       "failures": sum(b["failures"] for b in bs), **summary(walls)}
            if walls:
                med[("parallel", rt)] = par[rt]["median_ms"]
        rss = {}
        for rt in ALL_RTS:
            v = [s["maxrss_kib"] for s in self.rss[rt]
                 if s["rc"] == 0 and s["maxrss_kib"] is not None]
            if v:
                rss[rt] = {"median_kib": statistics.median(v), "max_kib": max(v),
                           "failures": sum(1 for s in self.rss[rt] if s["rc"] != 0),
                           "samples": self.rss[rt]}
        result = {
            "machine": self.meta,
            "settings": {"rounds": self.rounds, "parallel_runs": self.par_n,
                         "parallel_batches": self.par_batches,
                         "id_prefix": self.prefix, "timing": "posix_spawn + wait4, "
                         "perf_counter_ns; runtimes interleaved in a rotating order per round",
                         "mib": "1 MiB = 1024 KiB = 1048576 bytes"},
            "interrupted": interrupted,
            "runtimes": rinfo,
            "skipped_scenarios": self.scn_skipped,
            "scenarios": scen,
            "parallel": par,
            "rss_run": rss,
            "rss_method": f"one untimed `run` per runtime per round under `{GNU_TIME} -f %M` "
                          "(ru_maxrss of the runtime, KiB, including the children it reaped)",
            "cgroup_dirs_seen": self.cg_seen,
            "cgroup_parents": self.cgroup_parents(),
            "left_in_state_dirs": left,
        }
        if interrupted:
            print("\nINTERRUPTED: the numbers below are from the rounds done so far")
        result["table"], result["targets"] = self.print_table(med, par, rss, rinfo)
        return result

    def cgroup_parents(self):
        """The directories between a hierarchy's root and the containers' cgroups (v1
        hierarchies and the host's cgroup2 only: the tmpfs goes away with the namespace)."""
        roots = cgroup_mounts()
        out = set()
        for dirs in self.cg_seen.values():
            for d in dirs:
                root = hierarchy_root(d, roots)
                if not root:
                    continue
                p = os.path.dirname(d)
                while p != root and p.startswith(root + "/"):
                    out.add(p)
                    p = os.path.dirname(p)
        return sorted(out)

    def print_table(self, med, par, rss, rinfo):
        def ratio(a, b):
            return None if a is None or b in (None, 0) else a / b

        rows = []  # (label, {rt: value}, floor_ratio?, unit format)
        labels = {"run": "run (ms)", "csd": "create+start+delete (ms)", "exec": "exec (ms)",
                  "run-seccomp": "run-seccomp (ms)"}
        for scn in SCENARIOS:
            rows.append((labels[scn], {rt: med.get((scn, rt)) for rt in ALL_RTS}, scn == "run"))
        rows.append((f"parallel x{self.par_n} wall (ms)",
                     {rt: med.get(("parallel", rt)) for rt in CONTAINER_RTS}, False))
        rows.append((f"parallel failures (of {self.par_n * self.par_batches})",
                     {rt: par[rt]["failures"] for rt in par}, False))
        rows.append(("run peak RSS median (MiB)",
                     {rt: rss[rt]["median_kib"] / MIB for rt in rss}, False))
        rows.append(("run peak RSS max (MiB)",
                     {rt: rss[rt]["max_kib"] / MIB for rt in rss}, False))
        rows.append(("binary size (MiB)",
                     {rt: rinfo[rt]["size_bytes"] / (MIB * 1024) for rt in ALL_RTS
                      if rinfo[rt].get("size_bytes")}, False))
        head = ["", "berth", "runc", "crun", "floor", "berth/crun", "berth/runc", "berth/floor"]
        table = []
        for label, vals, with_floor in rows:
            b = vals.get("berth")
            cells = [label]
            for rt in ALL_RTS:
                v = vals.get(rt)
                cells.append("-" if v is None else (f"{v}" if isinstance(v, int) else f"{v:.2f}"))
            isfail = label.startswith("parallel failures")
            for other in ("crun", "runc", "floor"):
                r = None if isfail or (other == "floor" and not with_floor) else \
                    ratio(b, vals.get(other))
                cells.append("-" if r is None else f"{r:.2f}")
            table.append(cells)
        w = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]
        print()
        print("  ".join(h.ljust(w[0]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(head)))
        for r in table:
            print("  ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
        print("(times: median wall ms over the rounds; RSS: ru_maxrss of the runtime in `run`, "
              "by GNU time, which includes the children it reaped; 1 MiB = 1024 KiB)")
        for rt, why in self.skipped.items():
            print(f"skipped {rt}: {why}")
        for k, why in self.scn_skipped.items():
            print(f"skipped {k}: {why}")
        for scn in SCENARIOS:
            for rt in ALL_RTS:
                bad = [s for s in self.samples[scn][rt] if s["rc"] != 0]
                if bad:
                    print(f"failures {scn}/{rt}: {len(bad)}, e.g. exit {bad[0]['rc']}: "
                          f"{bad[0].get('stderr', '')[:300]}")
        for rt in ALL_RTS:
            bad = [s for s in self.rss[rt] if s["rc"] != 0]
            if bad:
                print(f"failures rss/{rt}: {len(bad)}, e.g. exit {bad[0]['rc']}: "
                      f"{bad[0].get('stderr', '')[:300]}")
        for rt, p in par.items():
            sample = next((b["stderr_sample"] for b in p["batches"] if b.get("stderr_sample")),
                          None)
            if p["failures"]:
                print(f"parallel {rt}: {p['failures']} failed runs; a failing stderr: "
                      f"{(sample or '(empty)')[:400]}")

        targets = []

        def target(name, value, limit, ok, skip_why=None):
            res = "SKIP" if skip_why else ("PASS" if ok else "FAIL")
            targets.append({"target": name, "value": value, "limit": limit, "result": res,
                            **({"why": skip_why} if skip_why else {})})

        for scn in ("run", "csd", "run-seccomp"):
            r = ratio(med.get((scn, "berth")), med.get((scn, "crun")))
            target(f"{scn}: berth <= {TARGETS_RATIO_CRUN}x crun",
                   None if r is None else round(r, 3), TARGETS_RATIO_CRUN,
                   r is not None and r <= TARGETS_RATIO_CRUN,
                   None if r is not None else "berth or crun not measured")
        r = ratio(med.get(("run", "berth")), med.get(("run", "floor")))
        target(f"run: berth <= {TARGET_RATIO_FLOOR}x floor", None if r is None else round(r, 3),
               TARGET_RATIO_FLOOR, r is not None and r <= TARGET_RATIO_FLOOR,
               None if r is not None else "berth or floor not measured")
        m = rss.get("berth", {}).get("max_kib")
        target(f"berth peak RSS (max over runs) <= {TARGET_MIB} MiB",
               None if m is None else round(m / MIB, 3), TARGET_MIB,
               m is not None and m / MIB <= TARGET_MIB, None if m is not None else "no runs")
        sz = rinfo["berth"].get("size_bytes")
        target(f"berth binary <= {TARGET_MIB} MiB", None if sz is None else
               round(sz / MIB / 1024, 3), TARGET_MIB, sz is not None and sz <= TARGET_MIB * MIB * 1024,
               None if sz is not None else "no binary")
        f = par.get("berth", {}).get("failures")
        target("parallel: berth has 0 failures", f, 0, f == 0,
               None if f is not None else "not measured")
        print("\ntargets:")
        for t in targets:
            v = "-" if t["value"] is None else t["value"]
            print(f"  {t['result']:4}  {t['target']}  (got {v})")
        return [head] + table, targets


# ---------------------------------------------------------------------------------------
def cmd_bundles(work, seccomp):
    base = os.path.join(work, "bundle")
    cfg_path = os.path.join(base, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    cfg.get("linux", {}).pop("cgroupsPath", None)
    cfg.get("linux", {}).pop("seccomp", None)

    def write(d, c):
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=1)
            f.write("\n")

    write(base, cfg)
    with open(seccomp) as f:
        prof = json.load(f)
    for name, edit in (("bundle-seccomp", lambda c: c["linux"].__setitem__("seccomp", prof)),
                       ("bundle-sleep", lambda c: c["process"].__setitem__(
                           "args", ["sleep", "100000"]))):
        d = os.path.join(work, name)
        shutil.copytree(base, d, symlinks=True)
        c = json.loads(json.dumps(cfg))
        edit(c)
        write(d, c)


def cmd_snapshot(work):
    try:
        run = sorted(os.listdir("/run"))
    except OSError:
        run = []
    with open(os.path.join(work, "before.json"), "w") as f:
        json.dump({"cgroup_dirs": cgroup_dirs(), "run": run}, f)


def cmd_check(work, out):
    """Leftovers after the bench, seen from the host's mount namespace."""
    tok = os.environ.get("BENCH_TOK", "x")
    prefix = f"bench{tok}"
    with open(os.path.join(work, "before.json")) as f:
        before = json.load(f)
    try:
        with open(out) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = None
    left = {"cgroup_dirs": [], "mounts": [], "state": {}, "removed_parents": [],
            "kept_parents": [], "new_in_run": []}
    # Cgroup directories of the bench's containers that a runtime left: note them, per
    # runtime, and remove them (deepest first; rmdir fails on a cgroup that has processes).
    for d in sorted(cgroup_dirs(), key=lambda d: d.count("/"), reverse=True):
        if prefix not in d:
            continue
        try:
            os.rmdir(d)
            left["cgroup_dirs"].append({"dir": d, "removed": True})
        except OSError as e:
            left["cgroup_dirs"].append({"dir": d, "removed": False, "error": e.strerror})
    # Empty cgroup parents the bench made (they did not exist before): remove, deepest first.
    before_dirs = set(before["cgroup_dirs"])
    for p in sorted((result or {}).get("cgroup_parents", []), key=len, reverse=True):
        if p in before_dirs or not os.path.isdir(p):
            continue
        try:
            os.rmdir(p)
            left["removed_parents"].append(p)
        except OSError as e:
            left["kept_parents"].append(f"{p}: {e.strerror}")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4]
            if mp == work or mp.startswith(work + "/") or f"berth-bench-{tok}" in line:
                left["mounts"].append(line.strip())
    for e in sorted(os.listdir(work)):
        if e.startswith("state-"):
            ents = os.listdir(os.path.join(work, e))
            if ents:
                left["state"][e[len("state-"):]] = ents
    try:
        left["new_in_run"] = sorted(set(os.listdir("/run")) - set(before["run"]))
    except OSError:
        pass
    warn = False
    by_rt = {}
    for d in left["cgroup_dirs"]:
        name = next((c for c in d["dir"].split("/") if c.startswith(prefix)), "")
        rt = name[len(prefix) + 1:].split("-")[0]
        by_rt.setdefault(rt, []).append(d)
    for rt, ds in sorted(by_rt.items()):
        ids = sorted({next(c for c in d["dir"].split("/") if c.startswith(prefix)) for d in ds})
        kept = [d for d in ds if not d["removed"]]
        print(f"WARNING: {rt} left {len(ds)} cgroup directories of {len(ids)} containers "
              f"(e.g. {ds[0]['dir']}); " + (f"{len(kept)} could not be removed: "
              f"{kept[0]['dir']}: {kept[0]['error']}" if kept else "removed them"))
        warn = True
    for m in left["mounts"]:
        print(f"WARNING: mount left: {m}")
        warn = True
    for rt, ents in left["state"].items():
        print(f"WARNING: {rt} state left: {' '.join(ents)}")
        warn = True
    for p in left["kept_parents"]:
        print(f"WARNING: cgroup parent made by the bench not removed: {p}")
        warn = True
    for p in left["removed_parents"]:
        print(f"removed the empty cgroup parent the bench made: {p}")
    if left["new_in_run"]:
        print(f"note: new in /run since the start (maybe not the bench's): "
              f"{' '.join(left['new_in_run'])}")
    if not warn:
        print("leftovers: none (no cgroup directory, mount or state of the bench remains)")
    if result is not None:
        result["leftovers"] = left
        with open(out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        os.replace(out + ".tmp", out)
    return 1 if warn else 0


def main(argv):
    signal.signal(signal.SIGALRM, _on_alarm)
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "measure":
        # bench.sh starts this in the background, where SIGINT comes ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _on_term)
        signal.signal(signal.SIGHUP, _on_term)
    else:
        ignore_signals()
    if cmd == "bundles" and len(argv) == 4:
        cmd_bundles(argv[2], argv[3])
    elif cmd == "snapshot" and len(argv) == 3:
        cmd_snapshot(argv[2])
    elif cmd == "measure" and len(argv) == 5:
        return Measure(argv[2], int(argv[3]), argv[4]).run()
    elif cmd == "cleanup" and len(argv) == 3:
        left = Bench(argv[2]).cleanup()
        for rt, ids in left.items():
            print(f"WARNING: {rt} could not delete: {' '.join(ids)}", file=sys.stderr)
    elif cmd == "check" and len(argv) == 4:
        return cmd_check(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
