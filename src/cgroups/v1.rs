//! The v1 driver (pure v1 and hybrid hosts): one directory per mounted hierarchy; each
//! resource is written in the hierarchy of its controller.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use serde_json::Value;

use super::fs::{self, read_u64, write};
use super::oom::OomWatch;
use super::stats;
use super::{Apply, Driver, Hierarchy, ROOT, devices::Rule};
use crate::err;
use crate::error::{Context, Result};

pub struct V1 {
    cgs: Vec<(Hierarchy, PathBuf)>,
}

impl V1 {
    pub fn new(hs: &[Hierarchy], dirs: &[PathBuf]) -> V1 {
        let cgs = dirs
            .iter()
            .filter_map(|d| {
                let h = hs.iter().find(|h| d.starts_with(&h.mount))?;
                Some((h.clone(), d.clone()))
            })
            .collect();
        V1 { cgs }
    }

    /// The directory in the hierarchy of `ctrl`, if one is mounted.
    pub(super) fn dir(&self, ctrl: &str) -> Option<&Path> {
        self.cgs
            .iter()
            .find(|(h, _)| h.has(ctrl))
            .map(|(_, d)| d.as_path())
    }

    /// The directory of `ctrl`, or an error naming `field` and the file that would be.
    fn need(&self, ctrl: &str, field: &str, file: &str) -> Result<&Path> {
        self.dir(ctrl).ok_or_else(|| {
            err!("{field}: {ROOT}/{ctrl}/…/{file} does not exist on this host (no {ctrl} cgroup hierarchy is mounted)")
        })
    }

    fn memory(&self, m: &LinuxMemory, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("memory.{n}"));
        let set = |v: Option<i64>| v.filter(|&v| v != 0);
        let (limit, swap) = (set(m.limit()), set(m.swap()));
        #[allow(deprecated)]
        if set(m.kernel()).is_some() {
            log::warn!(
                "{}: kernel memory limits are deprecated and ignored (as runc does)",
                f("kernel")
            );
        }
        let any = limit.is_some()
            || swap.is_some()
            || set(m.reservation()).is_some()
            || set(m.kernel_tcp()).is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true)
            || m.use_hierarchy() == Some(false);
        if !any {
            return Ok(());
        }
        let dir = self.need("memory", &f("limit"), "memory.limit_in_bytes")?;
        if how.update
            && m.check_before_update() == Some(true)
            && let (Some(l), Some(u)) = (limit, read_u64(dir, "memory.usage_in_bytes"))
            && l > 0
            && (l as u64) < u
        {
            return Err(err!(
                "{}: {l} is below the current usage {u} (checkBeforeUpdate)",
                f("limit")
            ));
        }
        let num = |v: i64| v.to_string();
        let swap = match (limit, swap) {
            // Unlimited memory and no swap given: swap unlimited too.
            (Some(-1), None) if dir.join("memory.memsw.limit_in_bytes").exists() => Some(-1),
            _ => swap,
        };
        let swap_first = match (limit, swap) {
            (Some(_), Some(-1)) => true,
            (Some(_), Some(s)) => {
                read_u64(dir, "memory.limit_in_bytes").is_some_and(|c| c < s as u64)
            }
            _ => false,
        };
        let w_limit = |v| write(dir, "memory.limit_in_bytes", &num(v), &f("limit"));
        let w_swap = |v| write(dir, "memory.memsw.limit_in_bytes", &num(v), &f("swap"));
        let skip_limit = |v: i64| how.fresh && v == -1;
        if swap_first {
            w_swap(swap.unwrap())?;
            if let Some(l) = limit {
                w_limit(l)?;
            }
        } else {
            if let Some(l) = limit.filter(|&l| !skip_limit(l)) {
                w_limit(l)?;
            }
            if let Some(s) = swap.filter(|&s| !skip_limit(s)) {
                w_swap(s)?;
            }
        }
        if let Some(r) = set(m.reservation()) {
            write(
                dir,
                "memory.soft_limit_in_bytes",
                &num(r),
                &f("reservation"),
            )?;
        }
        if let Some(k) = set(m.kernel_tcp()) {
            write(
                dir,
                "memory.kmem.tcp.limit_in_bytes",
                &num(k),
                &f("kernelTCP"),
            )?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(err!("{}: {s} is not within 0..=100", f("swappiness")));
            }
            write(dir, "memory.swappiness", &s.to_string(), &f("swappiness"))?;
        }
        match m.disable_oom_killer() {
            Some(true) => write(dir, "memory.oom_control", "1", &f("disableOOMKiller"))?,
            Some(false) if how.update => {
                write(dir, "memory.oom_control", "0", &f("disableOOMKiller"))?
            }
            _ => {}
        }
        if m.use_hierarchy() == Some(false) {
            write(dir, "memory.use_hierarchy", "0", &f("useHierarchy"))?;
        }
        Ok(())
    }

    fn cpu(&self, c: &LinuxCpu, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("cpu.{n}"));
        let fresh = how.fresh;
        let mut writes: Vec<(&str, String, &str, &str)> = Vec::new();
        if let Some(s) = c.shares().filter(|&s| s != 0 && !(fresh && s == 1024)) {
            writes.push(("cpu", s.to_string(), "cpu.shares", "shares"));
        }
        if let Some(p) = c.period().filter(|&p| p != 0 && !(fresh && p == 100_000)) {
            writes.push(("cpu", p.to_string(), "cpu.cfs_period_us", "period"));
        }
        if let Some(q) = c.quota().filter(|&q| q != 0 && !(fresh && q == -1)) {
            writes.push(("cpu", q.to_string(), "cpu.cfs_quota_us", "quota"));
        }
        if let Some(b) = c.burst().filter(|&b| b != 0 || !fresh) {
            writes.push(("cpu", b.to_string(), "cpu.cfs_burst_us", "burst"));
        }
        if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
            writes.push(("cpu", p.to_string(), "cpu.rt_period_us", "realtimePeriod"));
        }
        if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
            writes.push(("cpu", r.to_string(), "cpu.rt_runtime_us", "realtimeRuntime"));
        }
        if let Some(i) = c.idle().filter(|&i| i != 0 || !fresh) {
            writes.push(("cpu", i.to_string(), "cpu.idle", "idle"));
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            writes.push(("cpuset", s.to_string(), "cpuset.cpus", "cpus"));
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            writes.push(("cpuset", s.to_string(), "cpuset.mems", "mems"));
        }
        for (ctrl, v, file, name) in writes {
            let field = f(name);
            write(self.need(ctrl, &field, file)?, file, &v, &field).map_err(|e| {
                if file == "cpu.rt_runtime_us" && e.errno() == Some(nix::errno::Errno::EINVAL) {
                    err!("{e} (each parent cgroup needs at least as much cpu.rt_runtime_us)")
                } else {
                    e
                }
            })?;
        }
        Ok(())
    }

    fn blkio(&self, b: &LinuxBlockIo, how: Apply) -> Result<()> {
        let f = |n: &str| how.field(&format!("blockIO.{n}"));
        let mut writes: Vec<(String, &str, String)> = Vec::new();
        if let Some(w) = b.weight().filter(|&w| w != 0) {
            writes.push((w.to_string(), "blkio.weight", f("weight")));
        }
        if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
            writes.push((w.to_string(), "blkio.leaf_weight", f("leafWeight")));
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
                writes.push((
                    format!("{dev} {w}"),
                    "blkio.weight_device",
                    f(&format!("weightDevice[{i}].weight")),
                ));
            }
            if let Some(w) = d.leaf_weight() {
                writes.push((
                    format!("{dev} {w}"),
                    "blkio.leaf_weight_device",
                    f(&format!("weightDevice[{i}].leafWeight")),
                ));
            }
        }
        for (list, file, name) in [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "throttleWriteIOPSDevice",
            ),
        ] {
            for (i, d) in list.as_deref().unwrap_or_default().iter().enumerate() {
                writes.push((
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                    file,
                    f(&format!("{name}[{i}]")),
                ));
            }
        }
        for (v, file, field) in writes {
            let dir = self.need("blkio", &field, file)?;
            // Kernels with BFQ instead of CFQ name the weights blkio.bfq.weight*.
            let bfq = file.replace("blkio.", "blkio.bfq.");
            let file =
                if file.contains("weight") && !dir.join(file).exists() && dir.join(&bfq).exists() {
                    bfq.as_str()
                } else {
                    file
                };
            write(dir, file, &v, &field)?;
        }
        Ok(())
    }

    fn others(&self, r: &LinuxResources, how: Apply) -> Result<()> {
        if let Some(p) = r.pids().as_ref().map(|p| p.limit()).filter(|&l| l != 0) {
            let field = how.field("pids.limit");
            let v = if p < 0 {
                "max".to_string()
            } else {
                p.to_string()
            };
            if !(how.fresh && v == "max") {
                write(
                    self.need("pids", &field, "pids.max")?,
                    "pids.max",
                    &v,
                    &field,
                )?;
            }
        }
        for (i, h) in r
            .hugepage_limits()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = how.field(&format!("hugepageLimits[{i}]"));
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            let dir = self.need("hugetlb", &field, &file)?;
            write(dir, &file, &h.limit().to_string(), &field)?;
            let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size());
            if dir.join(&rsvd).exists() {
                write(dir, &rsvd, &h.limit().to_string(), &field)?;
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let field = how.field("network.classID");
                let dir = self.need("net_cls", &field, "net_cls.classid")?;
                write(dir, "net_cls.classid", &id.to_string(), &field)?;
            }
            for (i, p) in n
                .priorities()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let field = how.field(&format!("network.priorities[{i}]"));
                let dir = self.need("net_prio", &field, "net_prio.ifpriomap")?;
                write(
                    dir,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                    &field,
                )?;
            }
        }
        if let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let field = how.field(&format!("rdma[{k:?}]"));
                let dir = self.need("rdma", &field, "rdma.max")?;
                write(dir, "rdma.max", &super::v2::rdma_line(k, &map[k]), &field)?;
            }
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(err!(
                "{}: cgroup v2 keys cannot be applied on this cgroup v1 host",
                how.field("unified")
            ));
        }
        Ok(())
    }
}

/// devices.allow / devices.deny, one rule a write, in order; each file opened once.
pub fn apply_devices(hs: &[Hierarchy], dirs: &[PathBuf], rules: &[Rule]) -> Result<()> {
    use std::io::Write;
    let v = V1::new(hs, dirs);
    let field = "config.json linux.resources.devices";
    let dir = v.need("devices", field, "devices.allow")?;
    let mut files: [Option<std::fs::File>; 2] = [None, None];
    for r in rules {
        let (slot, name) = if r.allow {
            (0, "devices.allow")
        } else {
            (1, "devices.deny")
        };
        let p = dir.join(name);
        let f = match &mut files[slot] {
            Some(f) => f,
            empty => empty.insert(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .with_ctx(|| format!("{field}: open {}", p.display()))?,
            ),
        };
        let line = r.v1_line();
        // One rule per write(2): the kernel reads a single rule from each.
        f.write_all(line.as_bytes())
            .with_ctx(|| format!("{field}: write {line:?} to {}", p.display()))?;
    }
    Ok(())
}

impl Driver for V1 {
    fn prepare(&self) -> Result<()> {
        // A new cpuset cgroup has no cpus and no mems, and no task may join it: each level
        // from the hierarchy's root down to the leaf that is still empty gets its parent's
        // (every level, not only those made here: another create may not have filled a
        // shared parent yet).
        let Some((h, leaf)) = self.cgs.iter().find(|(h, _)| h.has("cpuset")) else {
            return Ok(());
        };
        let mut levels: Vec<&Path> = leaf
            .ancestors()
            .take_while(|p| p.starts_with(&h.mount) && *p != h.mount)
            .collect();
        levels.reverse();
        for d in levels {
            let parent = d.parent().unwrap_or(d);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(d, file)?.is_empty() {
                    let v = fs::read(parent, file)?;
                    write(d, file, &v, &format!("cgroup: inherit {file}"))?;
                }
            }
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.cgs {
            write(
                d,
                "cgroup.procs",
                &pid.to_string(),
                &format!("cgroup: add pid {pid}"),
            )?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources, how: Apply) -> Result<()> {
        if let Some(m) = r.memory() {
            self.memory(m, how)?;
        }
        if let Some(c) = r.cpu() {
            self.cpu(c, how)?;
        }
        if let Some(b) = r.block_io() {
            self.blkio(b, how)?;
        }
        self.others(r, how)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = self.need("freezer", "pause", "freezer.state")?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut nap = 100;
        loop {
            write(dir, "freezer.state", want, "freezer")?;
            if fs::read(dir, "freezer.state")? == want {
                return Ok(());
            }
            if std::time::Instant::now() > end {
                let _ = write(dir, "freezer.state", "THAWED", "freezer");
                return Err(err!("{}: not {want} after 10 s", dir.display()));
            }
            std::thread::sleep(std::time::Duration::from_micros(nap));
            nap = (nap * 2).min(10_000);
        }
    }

    fn frozen(&self) -> bool {
        self.dir("freezer")
            .and_then(|d| fs::read(d, "freezer.state").ok())
            .is_some_and(|s| s == "FROZEN")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = ["pids", "freezer", "memory", "cpu"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.cgs.first().map(|(_, d)| d.as_path()));
        match dir {
            Some(d) => fs::procs_recursive(d),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self) -> Result<Value> {
        Ok(stats::v1(self))
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        OomWatch::v1(self.need("memory", "events", "memory.oom_control")?)
    }

    fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }
}

/// The driver against plain files standing in for v1 hierarchies.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fake(ctrls: &[(&str, &[&str])]) -> (PathBuf, V1) {
        let base = std::env::temp_dir().join(format!(
            "berth-v1-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let mut hs = Vec::new();
        let mut dirs = Vec::new();
        for (ctrl, files) in ctrls {
            let mount = base.join(ctrl);
            let dir = mount.join("c");
            std::fs::create_dir_all(&dir).unwrap();
            for f in *files {
                std::fs::write(dir.join(f), "").unwrap();
            }
            hs.push(Hierarchy {
                mount,
                controllers: vec![ctrl.to_string()],
                v2: false,
            });
            dirs.push(dir);
        }
        (base.clone(), V1::new(&hs, &dirs))
    }

    fn apply(v: &V1, r: serde_json::Value) -> Result<()> {
        let r: LinuxResources = serde_json::from_value(r).unwrap();
        v.apply(
            &r,
            Apply {
                origin: "config.json linux.resources",
                fresh: true,
                update: false,
            },
        )
    }

    #[test]
    fn values_land_in_their_hierarchies() {
        let (base, v) = fake(&[
            (
                "memory",
                &[
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "memory.swappiness",
                    "memory.oom_control",
                    "memory.kmem.tcp.limit_in_bytes",
                ],
            ),
            (
                "cpu",
                &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
            ),
            ("blkio", &["blkio.bfq.weight"]),
            ("pids", &["pids.max"]),
        ]);
        apply(
            &v,
            json!({
                "memory": {"limit": 1000000, "swap": 2000000, "swappiness": 0,
                           "disableOOMKiller": true, "kernelTCP": 500000},
                "cpu": {"shares": 1024, "quota": 20000},
                "blockIO": {"weight": 300},
                "pids": {"limit": 9}
            }),
        )
        .unwrap();
        let get =
            |c: &str, f: &str| std::fs::read_to_string(base.join(c).join("c").join(f)).unwrap();
        assert_eq!(get("memory", "memory.limit_in_bytes"), "1000000");
        assert_eq!(get("memory", "memory.memsw.limit_in_bytes"), "2000000");
        assert_eq!(get("memory", "memory.swappiness"), "0");
        assert_eq!(get("memory", "memory.oom_control"), "1");
        assert_eq!(get("memory", "memory.kmem.tcp.limit_in_bytes"), "500000");
        assert_eq!(get("cpu", "cpu.shares"), "", "1024 is a new cgroup's own");
        assert_eq!(get("cpu", "cpu.cfs_quota_us"), "20000");
        assert_eq!(
            get("blkio", "blkio.bfq.weight"),
            "300",
            "BFQ's name for the weight"
        );
        assert_eq!(get("pids", "pids.max"), "9");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_missing_hierarchy_or_file_is_named() {
        let (base, v) = fake(&[("blkio", &[])]);
        let e = apply(&v, json!({"blockIO": {"weight": 300}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.json linux.resources.blockIO.weight: ")
                && e.ends_with("/blkio/c/blkio.weight does not exist on this host"),
            "{e}"
        );
        let e = apply(&v, json!({"network": {"classID": 7}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("network.classID") && e.contains("no net_cls cgroup hierarchy"),
            "{e}"
        );
        let e = apply(&v, json!({"unified": {"memory.high": "1"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cgroup v1 host"), "{e}");
        let _ = std::fs::remove_dir_all(base);
    }
}
