//! The v2 driver: one directory in the unified hierarchy, with runc's conversions of the
//! spec's v1-shaped values (cpu.shares → cpu.weight, blkio weight → io.weight or
//! io.bfq.weight, memory+swap → memory.swap.max, …). Fields v2 has no knob for
//! (swappiness, kernel memory, disableOOMKiller, realtime, leafWeight, network) are
//! ignored with a warning, as runc ignores them.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources};
use serde_json::Value;

use super::fs::{self, keyed, read_keyed, read_u64, write};
use super::oom::OomWatch;
use super::stats;
use super::{Apply, Driver, ROOT};
use crate::err;
use crate::error::{Context, Result};

pub struct V2 {
    pub dir: PathBuf,
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000].
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w.clamp(10, 1000) as u64 - 10) * 9999 / 990
}

/// runc's ConvertMemorySwapToCgroupV2Value: v1's memory+swap limit → v2's swap-only one.
/// 0 is unset, -1 is "max".
pub fn swap_to_v2(swap: i64, memory: i64) -> std::result::Result<i64, &'static str> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err("a swap limit needs a memory limit");
    }
    if swap < memory {
        return Err("memory+swap limit (swap) must be >= the memory limit");
    }
    Ok(swap - memory)
}

pub fn rdma_line(dev: &str, r: &LinuxRdma) -> String {
    let v = |o: Option<u32>| o.map_or("max".to_string(), |n| n.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        v(r.hca_handles()),
        v(r.hca_objects())
    )
}

fn num(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

fn ignored(field: String, why: &str) {
    log::warn!("{field}: {why} on cgroup v2, ignored (as runc does)");
}

/// Keys of `unified` that are not resources: writing them would move processes, kill them
/// or change delegation behind berth's back.
const NOT_RESOURCES: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.subtree_control",
    "cgroup.type",
];

impl V2 {
    fn w(&self, file: &str, v: &str, field: &str) -> Result<()> {
        write(&self.dir, file, v, field)
    }

    fn memory(&self, m: &LinuxMemory, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("memory.{n}"));
        let limit = m.limit().unwrap_or(0);
        let swap =
            swap_to_v2(m.swap().unwrap_or(0), limit).map_err(|e| err!("{}: {e}", f("swap")))?;
        if how.update
            && m.check_before_update() == Some(true)
            && limit > 0
            && let Some(u) = read_u64(&self.dir, "memory.current")
            && (limit as u64) < u
        {
            return Err(err!(
                "{}: {limit} is below the current usage {u} (checkBeforeUpdate)",
                f("limit")
            ));
        }
        // memory and swap both set to the same value: no swap at all.
        let swap_s = if swap == 0 && m.swap().unwrap_or(0) > 0 {
            Some("0".to_string())
        } else if swap != 0 {
            Some(num(swap))
        } else {
            None
        };
        if let Some(s) = swap_s.filter(|s| !(how.fresh && s == "max")) {
            match self.w("memory.swap.max", &s, &f("swap")) {
                // No swap accounting: "max" is what the kernel does anyway.
                Err(e) if s == "max" && !self.dir.join("memory.swap.max").exists() => drop(e),
                r => r?,
            }
        }
        if limit != 0 && !(how.fresh && limit == -1) {
            self.w("memory.max", &num(limit), &f("limit"))?;
        }
        if let Some(r) = m.reservation().filter(|&r| r != 0) {
            self.w("memory.low", &num(r), &f("reservation"))?;
        }
        #[allow(deprecated)]
        if m.kernel().is_some_and(|k| k != 0) {
            ignored(f("kernel"), "kernel memory limits do not exist");
        }
        if m.kernel_tcp().is_some_and(|k| k != 0) {
            ignored(f("kernelTCP"), "kernel TCP limits do not exist");
        }
        if m.swappiness().is_some() {
            ignored(f("swappiness"), "there is no per-cgroup swappiness");
        }
        if m.disable_oom_killer() == Some(true) {
            ignored(f("disableOOMKiller"), "the OOM killer cannot be disabled");
        }
        if m.use_hierarchy() == Some(false) {
            ignored(f("useHierarchy"), "accounting is always hierarchical");
        }
        Ok(())
    }

    fn cpu(&self, c: &LinuxCpu, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("cpu.{n}"));
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            let w = shares_to_weight(s);
            if !(how.fresh && w == 100) {
                self.w("cpu.weight", &w.to_string(), &f("shares"))?;
            }
        }
        let quota = c.quota().filter(|&q| q != 0);
        let period = c.period().filter(|&p| p != 0);
        if quota.is_some() || period.is_some() {
            let q = match quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                // update with a period only: keep the quota in force.
                None => fs::read(&self.dir, "cpu.max")
                    .ok()
                    .and_then(|s| s.split(' ').next().map(str::to_string))
                    .unwrap_or_else(|| "max".into()),
            };
            let v = match period {
                Some(p) => format!("{q} {p}"),
                None => q,
            };
            let field = if quota.is_some() {
                f("quota")
            } else {
                f("period")
            };
            if !(how.fresh && (v == "max" || v == "max 100000")) {
                self.w("cpu.max", &v, &field)?;
            }
        }
        if let Some(b) = c.burst().filter(|&b| b != 0 || !how.fresh) {
            self.w("cpu.max.burst", &b.to_string(), &f("burst"))?;
        }
        if let Some(i) = c.idle().filter(|&i| i != 0 || !how.fresh) {
            self.w("cpu.idle", &i.to_string(), &f("idle"))?;
        }
        if c.realtime_period().is_some_and(|p| p != 0) {
            ignored(f("realtimePeriod"), "there is no realtime group scheduling");
        }
        if c.realtime_runtime().is_some_and(|r| r != 0) {
            ignored(
                f("realtimeRuntime"),
                "there is no realtime group scheduling",
            );
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            self.w("cpuset.cpus", s, &f("cpus"))?;
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            self.w("cpuset.mems", s, &f("mems"))?;
        }
        Ok(())
    }

    fn io(&self, b: &LinuxBlockIo, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("blockIO.{n}"));
        let bfq = self.dir.join("io.bfq.weight").exists();
        if let Some(w) = b.weight().filter(|&w| w != 0) {
            if bfq {
                self.w("io.bfq.weight", &w.to_string(), &f("weight"))?;
            } else {
                self.w(
                    "io.weight",
                    &blkio_to_io_weight(w).to_string(),
                    &f("weight"),
                )?;
            }
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            ignored(f("leafWeight"), "there are no leaf weights");
        }
        for (i, d) in b
            .weight_device()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let dev = format!("{}:{}", d.major(), d.minor());
            if let Some(w) = d.weight() {
                let field = f(&format!("weightDevice[{i}].weight"));
                if bfq {
                    self.w("io.bfq.weight", &format!("{dev} {w}"), &field)?;
                } else {
                    self.w(
                        "io.weight",
                        &format!("{dev} {}", blkio_to_io_weight(w)),
                        &field,
                    )?;
                }
            }
        }
        for (list, key, name) in [
            (
                b.throttle_read_bps_device(),
                "rbps",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "wbps",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "riops",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "wiops",
                "throttleWriteIOPSDevice",
            ),
        ] {
            for (i, d) in list.as_deref().unwrap_or_default().iter().enumerate() {
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                let line = format!("{}:{} {key}={rate}", d.major(), d.minor());
                self.w("io.max", &line, &f(&format!("{name}[{i}]")))?;
            }
        }
        Ok(())
    }

    fn unified(&self, map: &std::collections::HashMap<String, String>, how: Apply) -> Result<()> {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            let field = how.field(&format!("unified[{k:?}]"));
            // A key is a file name in the container's own cgroup: with a '/' or as '..' it
            // would write, as root, into a parent cgroup (lifting the limits over this one)
            // or anywhere on the host.
            if k.is_empty() || k.contains('/') || k == "." || k == ".." || !k.contains('.') {
                return Err(err!(
                    "{field}: not the name of a cgroup file (no '/' or '..', as <controller>.<knob>)"
                ));
            }
            if NOT_RESOURCES.contains(&k.as_str()) {
                return Err(err!(
                    "{field}: not a resource; berth manages this file itself"
                ));
            }
            self.w(k, &map[k], &field)?;
        }
        Ok(())
    }
}

impl Driver for V2 {
    fn prepare(&self) -> Result<()> {
        // Delegate every controller a level has to the level below, from just under the
        // root (the root's own delegation is the init system's) down to the leaf's parent.
        let root = Path::new(ROOT);
        let mut levels: Vec<&Path> = self
            .dir
            .ancestors()
            .skip(1)
            .take_while(|p| p.starts_with(root) && *p != root)
            .collect();
        levels.reverse();
        for p in levels {
            let have = fs::read(p, "cgroup.controllers").unwrap_or_default();
            let on = fs::read(p, "cgroup.subtree_control").unwrap_or_default();
            let missing: Vec<String> = have
                .split_whitespace()
                .filter(|c| !on.split_whitespace().any(|o| o == *c))
                .map(|c| format!("+{c}"))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if write(p, "cgroup.subtree_control", &missing.join(" "), "delegate").is_err() {
                // One at a time: a controller that cannot be delegated shows up later as a
                // missing file, named with the field that needed it.
                for c in &missing {
                    let _ = write(p, "cgroup.subtree_control", c, "delegate");
                }
            }
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        self.w(
            "cgroup.procs",
            &pid.to_string(),
            &format!("cgroup: add pid {pid}"),
        )
    }

    fn apply(&self, r: &LinuxResources, how: Apply) -> Result<()> {
        if let Some(m) = r.memory() {
            self.memory(m, how)?;
        }
        if let Some(c) = r.cpu() {
            self.cpu(c, how)?;
        }
        if let Some(b) = r.block_io() {
            self.io(b, how)?;
        }
        if let Some(p) = r.pids().as_ref().map(|p| p.limit()).filter(|&l| l != 0)
            && !(how.fresh && p < 0)
        {
            self.w("pids.max", &num(p), &how.field("pids.limit"))?;
        }
        for (i, h) in r
            .hugepage_limits()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = how.field(&format!("hugepageLimits[{i}]"));
            self.w(
                &format!("hugetlb.{}.max", h.page_size()),
                &h.limit().to_string(),
                &field,
            )?;
            let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size());
            if self.dir.join(&rsvd).exists() {
                self.w(&rsvd, &h.limit().to_string(), &field)?;
            }
        }
        if let Some(map) = r.rdma().as_ref() {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                self.w(
                    "rdma.max",
                    &rdma_line(k, &map[k]),
                    &how.field(&format!("rdma[{k:?}]")),
                )?;
            }
        }
        if let Some(n) = r.network()
            && (n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
        {
            ignored(how.field("network"), "net_cls and net_prio do not exist");
        }
        if let Some(u) = r.unified() {
            self.unified(u, how)?;
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let want = if frozen { "1" } else { "0" };
        self.w("cgroup.freeze", want, "freeze")?;
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut nap = 100;
        loop {
            let ev = read_keyed(&self.dir, "cgroup.events");
            if keyed(&ev, "frozen").map(|v| v.to_string()).as_deref() == Some(want) {
                return Ok(());
            }
            if std::time::Instant::now() > end {
                let _ = self.w("cgroup.freeze", "0", "freeze");
                return Err(err!("{}: not frozen={want} after 10 s", self.dir.display()));
            }
            std::thread::sleep(std::time::Duration::from_micros(nap));
            nap = (nap * 2).min(10_000);
        }
    }

    fn frozen(&self) -> bool {
        keyed(&read_keyed(&self.dir, "cgroup.events"), "frozen") == Some(1)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::procs_recursive(&self.dir)
    }

    fn stats(&self) -> Result<Value> {
        Ok(stats::v2(&self.dir))
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        OomWatch::v2(&self.dir.join("memory.events"))
    }

    fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        let p = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes())
            .map_err(|_| err!("{}: NUL in path", self.dir.display()))?;
        // SAFETY: open(2) of a NUL-terminated path that outlives the call.
        let fd = unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("open {}", self.dir.display()));
        }
        // SAFETY: open just returned this fd to us.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runc_conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(swap_to_v2(0, -1), Ok(-1));
        assert_eq!(swap_to_v2(-1, 100), Ok(-1));
        assert_eq!(swap_to_v2(300, 100), Ok(200));
        assert_eq!(swap_to_v2(100, 100), Ok(0));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn rdma_lines() {
        let r: LinuxRdma = serde_json::from_value(json!({"hcaHandles": 3})).unwrap();
        assert_eq!(
            rdma_line("mlx4_0", &r),
            "mlx4_0 hca_handle=3 hca_object=max"
        );
    }
}

/// The driver against a directory of plain files standing in for a cgroup: what each spec
/// value becomes on v2, checked without a v2 host.
#[cfg(test)]
mod apply_tests {
    use super::*;
    use serde_json::json;

    const FILES: &[&str] = &[
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "rdma.max",
        "memory.high",
    ];

    fn fake() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-v2-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for f in FILES {
            std::fs::write(d.join(f), "").unwrap();
        }
        std::fs::write(d.join("cpu.max"), "max 100000").unwrap();
        d
    }

    fn apply(dir: &Path, r: serde_json::Value, fresh: bool) -> Result<()> {
        let r: LinuxResources = serde_json::from_value(r).unwrap();
        V2 { dir: dir.into() }.apply(
            &r,
            Apply {
                origin: "config.json linux.resources",
                fresh,
                update: !fresh,
            },
        )
    }

    fn get(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }

    #[test]
    fn spec_values_become_v2_values() {
        let d = fake();
        apply(
            &d,
            json!({
                "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
                "cpu": {"shares": 2048, "quota": 50000, "period": 200000, "burst": 1000,
                        "cpus": "0", "mems": "0"},
                "pids": {"limit": 64},
                "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                "rdma": {"mlx5_0": {"hcaHandles": 2, "hcaObjects": 100}},
                "unified": {"memory.high": "90000000"}
            }),
            true,
        )
        .unwrap();
        for (f, want) in [
            ("memory.max", "104857600"),
            ("memory.low", "52428800"),
            ("memory.swap.max", "104857600"),
            ("cpu.weight", "79"),
            ("cpu.max", "50000 200000"),
            ("cpu.max.burst", "1000"),
            ("cpuset.cpus", "0"),
            ("pids.max", "64"),
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1048576"),
            ("hugetlb.2MB.max", "4194304"),
            ("rdma.max", "mlx5_0 hca_handle=2 hca_object=100"),
            ("memory.high", "90000000"),
        ] {
            assert_eq!(get(&d, f), want, "{f}");
        }
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn unset_and_default_values_are_not_written() {
        let d = fake();
        apply(
            &d,
            json!({"memory": {"limit": -1, "swap": 0}, "cpu": {"shares": 0, "quota": 0},
                   "pids": {"limit": -1}, "blockIO": {"weight": 0}}),
            true,
        )
        .unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "cpu.weight",
            "pids.max",
            "io.weight",
        ] {
            assert_eq!(get(&d, f), "", "{f} written");
        }
        assert_eq!(get(&d, "cpu.max"), "max 100000");
        // On update the same -1 is written: the cgroup may have a limit to lift.
        apply(
            &d,
            json!({"memory": {"limit": -1}, "pids": {"limit": -1}}),
            false,
        )
        .unwrap();
        assert_eq!(get(&d, "memory.max"), "max");
        assert_eq!(get(&d, "memory.swap.max"), "max");
        assert_eq!(get(&d, "pids.max"), "max");
        // An update of the period alone keeps the quota.
        std::fs::write(d.join("cpu.max"), "30000 100000").unwrap();
        apply(&d, json!({"cpu": {"period": 250000}}), false).unwrap();
        assert_eq!(get(&d, "cpu.max"), "30000 250000");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let d = fake();
        let e = apply(
            &d,
            json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("config.json linux.resources.hugepageLimits[0]: ")
                && e.ends_with("hugetlb.1GB.max does not exist on this host"),
            "{e}"
        );
        for (k, why) in [
            ("../memory.max", "not the name"),
            ("memory", "not the name"),
            ("cgroup.procs", "not a resource"),
            ("memory.nope", "does not exist"),
        ] {
            let e = apply(&d, json!({"unified": {k: "1"}}), true)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("linux.resources.unified") && e.contains(why),
                "{k}: {e}"
            );
        }
        let e = apply(&d, json!({"memory": {"limit": 100, "swap": 50}}), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.json linux.resources.memory.swap: "),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(d);
    }
}
