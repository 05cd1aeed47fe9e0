//! A `cgroup` entry of `mounts[]`: the container sees its own cgroup, never the host's tree.
//!
//! On a pure v2 host it is one cgroup2 mount; on v1 and hybrid hosts a tmpfs holding one
//! mount for each hierarchy the host has under `/sys/fs/cgroup`. In a cgroup namespace
//! each is a fresh mount of the hierarchy, which the kernel roots at the namespace's root,
//! the container's cgroup. Without one, a fresh mount would show the whole host tree, so
//! each is a bind of the container's cgroup in that hierarchy, found in /proc/self/cgroup
//! (read through the checked procfs).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use super::hostproc::HostProc;
use super::mountapi::{self, FsContext, MountAttr, attr};
use super::options::MountOptions;
use super::path::{Kind, Root};
use crate::err;
use crate::error::{Context, Result};

const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `in_cgroupns`: the init is in a cgroup namespace of the container's (new or joined).
pub fn mount(root: &Root, dest: &Path, o: &MountOptions, in_cgroupns: bool) -> Result<()> {
    let target = root.mount_point(dest, Kind::Dir, "a cgroup filesystem")?;
    super::mounts::not_inside_proc(root, &target, "cgroup")?;
    let proc = HostProc::open()?;
    let hierarchies = host_hierarchies()?;
    let own = proc.read("self/cgroup")?;
    let mnt = if hierarchies.is_empty() {
        let v2 = Hierarchy {
            dir: String::new(),
            controllers: Vec::new(),
            v2: true,
        };
        let mnt = hierarchy(&v2, o, &own, in_cgroupns)?;
        mountapi::move_mount(mnt.as_fd(), target.as_fd()).ctx("attach the cgroup mount")?;
        mnt
    } else {
        v1_tree(&target, o, &hierarchies, &own, in_cgroupns)?
    };
    mountapi::setattr(mnt.as_fd(), true, &o.recursive_attr())?;
    super::mounts::set_propagation(&mnt, &o.propagation)
}

/// A detached mount of the container's cgroup in hierarchy `h`, with `o`'s flags and
/// always nosuid, nodev and noexec.
fn hierarchy(h: &Hierarchy, o: &MountOptions, own: &str, in_cgroupns: bool) -> Result<OwnedFd> {
    let mut a = o.mount_attr();
    a.attr_set |= attr::NOSUID | attr::NODEV | attr::NOEXEC;
    let what = if h.v2 { "cgroup2" } else { h.dir.as_str() };
    if in_cgroupns {
        let fs = FsContext::open(if h.v2 { "cgroup2" } else { "cgroup" })?;
        fs.set_string("source", if h.v2 { "cgroup2" } else { "cgroup" })?;
        for c in &h.controllers {
            match c.split_once('=') {
                Some((k, v)) => fs.set_string(k, v)?,
                None => fs.set_flag(c)?,
            }
        }
        if !h.v2 && h.controllers.iter().all(|c| c.starts_with("name=")) {
            fs.set_flag("none")?;
        }
        return fs
            .mount(a.attr_set)
            .with_ctx(|| format!("cgroup {what}: mount it in the container's cgroup namespace"));
    }
    let rel = own_path(own, h)
        .ok_or_else(|| err!("cgroup {what}: this process is in no cgroup of it"))?;
    let src = Path::new(HOST_CGROUP_ROOT)
        .join(&h.dir)
        .join(rel.strip_prefix("/").unwrap_or(&rel));
    let bind = mountapi::clone_path(&src, true)?;
    mountapi::setattr(bind.as_fd(), false, &a)
        .with_ctx(|| format!("cgroup {what}: set the mount's options"))?;
    Ok(bind)
}

/// A tmpfs on `target` holding the container's cgroup of each hierarchy, each attached
/// by fd inside the new tmpfs.
fn v1_tree(
    target: &OwnedFd,
    o: &MountOptions,
    hierarchies: &[Hierarchy],
    own: &str,
    in_cgroupns: bool,
) -> Result<OwnedFd> {
    let fs = FsContext::open("tmpfs")?;
    fs.set_string("source", "tmpfs")?;
    fs.set_string("mode", "755")?;
    let base = o.fsmount_attr() & (attr::NOSUID | attr::NODEV | attr::NOEXEC);
    let tmpfs = fs
        .mount(base)
        .ctx("mount a tmpfs for the cgroup hierarchies")?;
    mountapi::move_mount(tmpfs.as_fd(), target.as_fd()).ctx("attach the cgroup tmpfs")?;
    let top = Root::from_fd(
        nix::fcntl::openat(
            tmpfs.as_fd(),
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open the cgroup tmpfs")?,
        Path::new("(cgroup tmpfs)"),
    );
    for h in hierarchies {
        if !in_cgroupns && own_path(own, h).is_none() {
            continue;
        }
        let t = top.mount_point(Path::new(&h.dir), Kind::Dir, "a cgroup hierarchy")?;
        let mnt = hierarchy(h, o, own, in_cgroupns)?;
        mountapi::move_mount(mnt.as_fd(), t.as_fd())
            .with_ctx(|| format!("cgroup {}: attach it", h.dir))?;
    }
    if o.flags.contains(MsFlags::MS_RDONLY) {
        let ro = MountAttr {
            attr_set: attr::RDONLY,
            ..Default::default()
        };
        mountapi::setattr(tmpfs.as_fd(), false, &ro).ctx("make the cgroup tmpfs read-only")?;
    }
    Ok(tmpfs)
}

/// A cgroup hierarchy below `/sys/fs/cgroup`, as the mount needs it.
#[derive(Debug, PartialEq)]
struct Hierarchy {
    dir: String,
    /// `cpu`, `memory`, `name=systemd`, …; empty for the v2 hierarchy.
    controllers: Vec<String>,
    v2: bool,
}

/// The host's hierarchies, from the probe the cgroup driver made once
/// (`cgroups::mode`); empty on a pure v2 host.
fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    Ok(match crate::cgroups::mode()? {
        crate::cgroups::Mode::V2 => Vec::new(),
        crate::cgroups::Mode::V1(hs) => hs
            .iter()
            .filter_map(|h| {
                Some(Hierarchy {
                    dir: h.mount.file_name()?.to_str()?.to_string(),
                    controllers: h.controllers.clone(),
                    v2: h.v2,
                })
            })
            .collect(),
    })
}

/// This process's cgroup in hierarchy `h`, from /proc/self/cgroup.
fn own_path(proc_cgroup: &str, h: &Hierarchy) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(dir: &str, controllers: &[&str], v2: bool) -> Hierarchy {
        Hierarchy {
            dir: dir.to_string(),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            v2,
        }
    }

    #[test]
    fn own_path_matches_controller_sets() {
        let pc = "12:cpuacct,cpu:/a\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(
            own_path(pc, &h("cpu,cpuacct", &["cpu", "cpuacct"], false)),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            own_path(pc, &h("systemd", &["name=systemd"], false)),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(
            own_path(pc, &h("unified", &[], true)),
            Some(PathBuf::from("/u"))
        );
        assert_eq!(own_path(pc, &h("cpu", &["cpu"], false)), None);
    }
}
