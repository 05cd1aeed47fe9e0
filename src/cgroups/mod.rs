//! Cgroups: the container's cgroup on pure v1, hybrid and pure v2 hosts.
//!
//! - The host's mode is probed once ([`mode`]) from `/proc/self/mountinfo`: cgroup2 mounted
//!   at `/sys/fs/cgroup` is pure v2; v1 hierarchies at `/sys/fs/cgroup/<name>` are v1, and
//!   hybrid when a cgroup2 is mounted beside them (`/sys/fs/cgroup/unified`). On a hybrid
//!   host the v1 controllers do all the work; the container also gets a cgroup in the
//!   unified hierarchy (as runc does), so that its `/sys/fs/cgroup/unified` is its own.
//! - One [`Driver`] per mode (`v1.rs`, `v2.rs`) behind one small trait: add a pid, apply
//!   resources, freeze and thaw, list pids, stats, OOM watch. Everything built from those
//!   (create, destroy, kill every process) is written once, here.
//! - Where the cgroup is ([`path`]): `linux.cgroupsPath` absolute (below each hierarchy's
//!   root), relative (below berth's own cgroup on v1; below its parent on v2, as runc, since
//!   berth's own cgroup holds processes and may not delegate controllers), or absent:
//!   `/berth/<id>`. With `--systemd-cgroup`, `slice:prefix:name` names the directory
//!   systemd would have made (`/<slice path>/<prefix>-<name>.scope`); berth writes it
//!   itself, as there is no systemd to ask.
//! - `create` makes the directories, applies every resource, and only then is the init
//!   cloned into it (v2: `CLONE_INTO_CGROUP`; v1: the parent writes the pid into each
//!   hierarchy before the init acts, see `process/sync.rs`). What `delete` needs is kept in
//!   the state as a [`Record`]. Values left unset (absent or 0, as Docker sends them) are
//!   not written, nor, in a cgroup made just now, the kernel's own defaults.
//! - A field the host cannot apply is an error naming the field and the missing file; a
//!   field cgroup v2 has no knob for (swappiness, kernel memory, realtime, …) is ignored
//!   with a warning, as runc does. An unprivileged caller who may not make cgroups and asks
//!   for no limits gets none (runc's rootless rule).
//! - `delete` (and `run` when it ends) kills what is left in a cgroup `create` made (frozen,
//!   SIGKILL, thawed), waits until it is empty and removes it with any cgroups below it.
//!
//! For `exec`: [`join`] puts a pid into the container's cgroup(s), and [`clone_fd`] gives
//! the v2 directory fd for `clone3(CLONE_INTO_CGROUP)`.

pub mod devices;
mod ebpf;
mod fs;
pub mod oom;
mod path;
pub mod stats;
mod v1;
mod v2;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};

use crate::container::State;
use crate::err;
use crate::error::{Context, Result};

pub use path::set_systemd;

pub const ROOT: &str = "/sys/fs/cgroup";

/// A cgroup hierarchy mounted at `/sys/fs/cgroup/<name>` (v1 and hybrid hosts).
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// `cpu`, `memory`, `name=systemd`, …; empty for the unified (v2) hierarchy.
    pub controllers: Vec<String>,
    pub v2: bool,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// v1 hierarchies; hybrid when one of them is a cgroup2 (`unified`).
    V1(Vec<Hierarchy>),
    V2,
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::V2 => "v2",
            Mode::V1(h) if h.iter().any(|h| h.v2) => "hybrid",
            Mode::V1(_) => "v1",
        }
    }
}

/// The host's cgroup mode, probed once.
pub fn mode() -> Result<&'static Mode> {
    static MODE: OnceLock<std::result::Result<Mode, String>> = OnceLock::new();
    MODE.get_or_init(|| {
        let mi = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
        parse_mode(&mi).ok_or_else(|| format!("no cgroup filesystem is mounted at {ROOT}"))
    })
    .as_ref()
    .map_err(|e| crate::error::Error::new(e.clone()))
}

fn parse_mode(mountinfo: &str) -> Option<Mode> {
    // Mounts in mountinfo order: a later mount on the same point (or on /sys/fs/cgroup
    // itself) hides what was there, e.g. a tmpfs laid over `/sys/fs/cgroup/unified` in a
    // private mount namespace makes a hybrid host plain v1 for this process.
    let mut seen: Vec<(&str, &str, &str)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mp = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let superopts = post.nth(1).unwrap_or("");
        if mp == ROOT {
            seen.clear();
        } else if !mp.starts_with("/sys/fs/cgroup/") {
            continue;
        }
        seen.retain(|(m, ..)| *m != mp);
        seen.push((mp, fstype, superopts));
    }
    let mut hs = Vec::new();
    for (mp, fstype, superopts) in seen {
        if mp == ROOT {
            if fstype == "cgroup2" {
                return Some(Mode::V2);
            }
            continue;
        }
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let v2 = match fstype {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            superopts
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro"
                            | "xattr"
                            | "noprefix"
                            | "clone_children"
                            | "cpuset_v2_mode"
                            | "none"
                    ) && (o.starts_with("name=") || !o.contains('='))
                })
                .map(str::to_string)
                .collect()
        };
        hs.push(Hierarchy {
            mount: PathBuf::from(mp),
            controllers,
            v2,
        });
    }
    (!hs.is_empty()).then_some(Mode::V1(hs))
}

/// What `delete`, `kill --all`, `pause`, … need to find the cgroup again; kept in state.json.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The container's cgroup directory in each hierarchy (one on v2).
    pub dirs: Vec<PathBuf>,
    /// The directories `create` made, parents first; `delete` removes them, deepest first.
    #[serde(default)]
    pub made: Vec<PathBuf>,
}

/// How resources are being applied: at create or by `update`.
#[derive(Clone, Copy)]
pub struct Apply<'a> {
    /// Prefix of every field name in errors: `config.json linux.resources` or `update`.
    pub origin: &'a str,
    /// The leaf was made just now: writes of the kernel's defaults are skipped.
    pub fresh: bool,
    /// `update`: check memory limits against current usage when asked to.
    pub update: bool,
}

impl Apply<'_> {
    pub fn field(&self, f: &str) -> String {
        format!("{}.{f}", self.origin)
    }
}

/// The operations that differ between v1 and v2.
pub trait Driver {
    /// Make the directories usable (v1: cpuset inheritance; v2: controller delegation).
    fn prepare(&self) -> Result<()>;
    fn add_pid(&self, pid: i32) -> Result<()>;
    fn apply(&self, r: &LinuxResources, how: Apply) -> Result<()>;
    /// Freeze or thaw, returning once the kernel says it is done.
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    fn frozen(&self) -> bool;
    /// Host pids of every process in the cgroup (and below it).
    fn pids(&self) -> Result<Vec<i32>>;
    /// runc's `events --stats` data object.
    fn stats(&self) -> Result<serde_json::Value>;
    /// A watch that becomes readable on an OOM event, and the count of OOM kills so far.
    fn oom_watch(&self) -> Result<oom::OomWatch>;
    /// v2: an fd of the directory, for `clone3(CLONE_INTO_CGROUP)`.
    fn clone_fd(&self) -> Result<Option<OwnedFd>>;
}

/// The container's cgroup.
pub struct Cgroup {
    pub record: Record,
    driver: Box<dyn Driver>,
}

fn driver(rec: &Record) -> Result<Box<dyn Driver>> {
    Ok(match mode()? {
        Mode::V2 => Box::new(v2::V2 {
            dir: rec
                .dirs
                .first()
                .cloned()
                .ok_or_else(|| err!("state: no cgroup directory recorded"))?,
        }),
        Mode::V1(hs) => Box::new(v1::V1::new(hs, &rec.dirs)),
    })
}

/// Make the container's cgroup and apply `linux.resources`; on failure nothing is left.
/// `None`: an unprivileged caller who may not make cgroups and asked for no limits runs
/// the container in its own cgroup, as runc does rootless.
/// `journal` is given the record before any directory is made, listing every directory
/// that is about to be made, so a create killed half-way can be undone from it.
pub fn create(
    spec: &Spec,
    id: &str,
    journal: &dyn Fn(&Record) -> Result<()>,
) -> Result<Option<Cgroup>> {
    let mode = mode()?;
    log::debug!("cgroups: {} host", mode.name());
    let linux = spec.linux().as_ref();
    let dirs = path::dirs(mode, linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
    let mut cg = Cgroup {
        record: Record {
            dirs: dirs.clone(),
            made: Vec::new(),
        },
        driver: driver(&Record {
            dirs,
            made: Vec::new(),
        })?,
    };
    let planned = Record {
        dirs: cg.record.dirs.clone(),
        made: cg
            .record
            .dirs
            .iter()
            .flat_map(|d| missing_ancestors(d))
            .collect(),
    };
    journal(&planned)?;
    let r = (|| -> Result<()> {
        for d in cg.record.dirs.clone() {
            fs::mkdir_all(&d, &mut cg.record.made).ctx("config.json linux.cgroupsPath")?;
        }
        cg.driver.prepare()?;
        let fresh = cg.record.dirs.iter().all(|d| cg.record.made.contains(d));
        let how = Apply {
            origin: "config.json linux.resources",
            fresh,
            update: false,
        };
        let empty = LinuxResources::default();
        let res = linux.and_then(|l| l.resources().as_ref()).unwrap_or(&empty);
        let extra = devices::from_linux_devices(linux.and_then(|l| l.devices().as_deref()));
        cg.driver.apply(res, how)?;
        apply_devices(mode, res, &extra, &cg.record.dirs)
    })();
    match r {
        Ok(()) => Ok(Some(cg)),
        Err(e) => {
            cg.remove_dirs();
            let denied = matches!(
                e.errno(),
                Some(
                    nix::errno::Errno::EACCES | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS
                )
            );
            if denied && !nix::unistd::geteuid().is_root() && !limits(linux) {
                log::warn!(
                    "{e}: running without a cgroup of its own (unprivileged, no limits asked)"
                );
                return Ok(None);
            }
            Err(e)
        }
    }
}

/// Whether config.json asks for any limit beyond the device rules.
fn limits(linux: Option<&oci_spec::runtime::Linux>) -> bool {
    let Some(r) = linux.and_then(|l| l.resources().as_ref()) else {
        return false;
    };
    let mut r = r.clone();
    r.set_devices(None);
    r != LinuxResources::default()
}

/// The device rules (v1: devices.allow/deny writes; v2: the eBPF program), at create only:
/// as runc, `update` leaves them.
fn apply_devices(
    mode: &Mode,
    r: &LinuxResources,
    extra: &[devices::Rule],
    dirs: &[PathBuf],
) -> Result<()> {
    let rules = devices::rules(r.devices().as_deref(), extra)?;
    match mode {
        Mode::V2 => {
            let prog = devices::program(&rules);
            ebpf::attach_device_filter(&dirs[0], &prog).ctx("config.json linux.resources.devices")
        }
        Mode::V1(hs) => v1::apply_devices(hs, dirs, &rules),
    }
}

impl Cgroup {
    pub fn load(rec: &Record) -> Result<Cgroup> {
        Ok(Cgroup {
            record: rec.clone(),
            driver: driver(rec)?,
        })
    }

    pub fn driver(&self) -> &dyn Driver {
        &*self.driver
    }

    /// v1: write the init's pid into every hierarchy (v2 clones it in instead).
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.driver.add_pid(pid)
    }

    pub fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        self.driver.clone_fd()
    }

    pub fn exists(&self) -> bool {
        self.record.dirs.iter().any(|d| d.exists())
    }

    /// Signal every process of the cgroup, frozen meanwhile so none can fork past it.
    /// Leaves the cgroup frozen or thawed as it found it. Without a freezer (a v1 host that
    /// does not mount one) the signal is sent unfrozen.
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        let was = self.driver.frozen();
        let froze = !was
            && match self.driver.set_frozen(true) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("signal without freezing: {e}");
                    false
                }
            };
        let r = self.driver.pids().map(|pids| {
            for pid in pids {
                // SAFETY: kill(2) on a pid read from the cgroup just now, while it is frozen
                // (a frozen process cannot exit and have its pid reused).
                unsafe { libc::kill(pid, sig) };
            }
        });
        // SIGKILL is acted on when the processes run again.
        if froze || (was && sig == libc::SIGKILL) {
            self.driver.set_frozen(false)?;
        }
        r
    }

    /// Whether `create` made the container's own directory (not only its parents): a cgroup
    /// it did not make (a pod's, shared) is not its to empty or remove.
    fn own(&self) -> bool {
        self.record
            .dirs
            .iter()
            .any(|d| self.record.made.contains(d))
    }

    /// SIGKILL whatever is left, wait until the cgroup is empty, remove what create made
    /// (with any cgroups the container made below its own).
    pub fn destroy(&self) -> Result<()> {
        if !self.exists() || !self.own() {
            return Ok(());
        }
        if !self.driver.pids()?.is_empty() {
            self.signal_all(libc::SIGKILL)?;
            let end = Instant::now() + Duration::from_secs(10);
            while !self.driver.pids()?.is_empty() {
                if Instant::now() > end {
                    return Err(err!(
                        "processes of cgroup {} still alive 10 s after SIGKILL",
                        self.record.dirs[0].display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.remove_dirs();
        match self.record.made.iter().rev().find(|d| d.exists()) {
            Some(d) if self.record.dirs.contains(d) => {
                Err(err!("remove cgroup {}: still busy", d.display()))
            }
            _ => Ok(()),
        }
    }

    /// rmdir what create made, deepest first; a parent another container uses stays.
    fn remove_dirs(&self) {
        for d in self.record.made.iter().rev() {
            // Listing a cgroup directory (dozens of files) costs more than trying the
            // rmdir: the cgroups a container made below its own are looked for only when
            // the rmdir fails.
            if self.record.dirs.contains(d) {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    continue;
                }
                remove_below(d);
            }
            rmdir(d);
        }
    }
}

/// `dir` and its ancestors that do not exist yet, outermost first.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.exists())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// rmdir every cgroup below `dir` (a container may make its own), deepest first.
fn remove_below(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_below(&e.path());
            rmdir(&e.path());
        }
    }
}

fn rmdir(d: &Path) {
    // A just-emptied cgroup can be briefly busy while the last task is released.
    for _ in 0..100 {
        match std::fs::remove_dir(d) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => break,
        }
    }
}

/// The container's cgroup from its state, if it has one.
pub fn of(st: &State) -> Result<Option<Cgroup>> {
    match &st.cgroup {
        Some(rec) if !rec.dirs.is_empty() => Cgroup::load(rec).map(Some),
        _ => Ok(None),
    }
}

/// For `exec`: put `pid` into the container's cgroup(s), as `create` does for the init on
/// v1 (on v2, prefer [`clone_fd`] with `clone3(CLONE_INTO_CGROUP)`). Call it before the
/// process runs anything of the container's. A container without a cgroup is a no-op.
pub fn join(st: &State, pid: i32) -> Result<()> {
    match of(st)? {
        Some(cg) => cg.add_pid(pid),
        None => Ok(()),
    }
}

/// For `exec` on v2: the fd of the container's cgroup directory for `clone3`'s
/// `CLONE_INTO_CGROUP`; `None` on v1 and hybrid hosts (use [`join`]).
#[allow(dead_code)] // for exec
pub fn clone_fd(st: &State) -> Result<Option<OwnedFd>> {
    match of(st)? {
        Some(cg) => cg.clone_fd(),
        None => Ok(None),
    }
}

/// Whether the container's cgroup is frozen (its status is then `paused`).
pub fn is_paused(st: &State) -> bool {
    matches!(of(st), Ok(Some(cg)) if cg.driver.frozen())
}

/// For `features`: berth drives v1 (and hybrid) and v2 hosts alike, and rdma; it has no
/// systemd driver (`--systemd-cgroup` only maps the path, see [`path`]).
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true
    })
}

/// A path below /sys/fs/cgroup that must stay below it: no `..` anywhere. berth makes the
/// directories of `cgroupsPath` and writes limits into files there as root: with `..` a
/// config could make directories anywhere on the host and write its values into whatever
/// files of that name it finds (`/sys/fs/cgroup/memory/../../../etc/…`).
pub fn check_inside(p: &Path, field: &str) -> Result<()> {
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(err!("{field}: {} must not contain '..'", p.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_mountinfo() {
        let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct";
        let m = parse_mode(hybrid).unwrap();
        assert_eq!(m.name(), "hybrid");
        let Mode::V1(h) = m else { panic!() };
        assert_eq!(h.len(), 5);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert!(h[3].v2);
        assert!(h[4].has("cpuacct") && h[4].has("cpu"));
        let v2 = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(parse_mode(v2), Some(Mode::V2));
        let v1 = "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids";
        assert_eq!(parse_mode(v1).unwrap().name(), "v1");
        assert_eq!(parse_mode("1 0 0:1 / / rw - ext4 /dev/sda rw"), None);
        // A named hierarchy mounted with "none" has only its name as controller.
        let named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,none,name=systemd";
        let Some(Mode::V1(h)) = parse_mode(named) else {
            panic!()
        };
        assert_eq!(h[0].controllers, vec!["name=systemd"]);
        // A tmpfs laid over the unified mount (crun's way onto a hybrid host) hides it.
        let hidden = format!("{hybrid}\n50 41 0:60 / /sys/fs/cgroup/unified rw - tmpfs none rw");
        assert_eq!(parse_mode(&hidden).unwrap().name(), "v1");
        let over = format!("{hybrid}\n51 23 0:61 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw");
        assert_eq!(parse_mode(&over), Some(Mode::V2));
    }
}
