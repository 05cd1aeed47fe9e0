//! Idmapped bind mounts: a mount entry with `uidMappings`/`gidMappings`, or the option
//! `idmap` (top mount) / `ridmap` (every mount of an rbind).
//!
//! The mappings are written, exactly as `linux.uidMappings` would be, into a user
//! namespace made for the purpose by a helper child; its namespace fd is given to
//! `mount_setattr(MOUNT_ATTR_IDMAP)` on the detached clone of the source, and the helper
//! exits. A file owned by `containerID` on the source shows as `hostID` through the mount
//! (and so as `containerID` again inside a container whose user namespace maps it that
//! way). With `idmap`/`ridmap` and no mappings of its own, the entry takes the
//! container's `linux.uidMappings`/`gidMappings`.
//!
//! Idmapping a mount takes CAP_SYS_ADMIN in the user namespace that owns the source's
//! filesystem, the host's: an init born in a user namespace cannot do it. For such a
//! container the runtime process makes the trees with [`premake`] before the init is
//! cloned (the init inherits the fds), and [`super::Setup::idmapped`] hands them over.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::hostproc::HostProc;
use super::mountapi::{self, MountAttr, attr};
use super::options::{self, Idmap};
use crate::err;
use crate::error::{Context, Result};
use crate::procfs::ProcFs;

/// Idmapped trees made ahead of the init, by mount index.
#[derive(Default)]
pub struct Premade {
    trees: RefCell<Vec<Option<OwnedFd>>>,
}

impl Premade {
    /// The tree made for `mounts[index]`, once.
    pub fn take(&self, index: usize) -> Option<OwnedFd> {
        self.trees
            .borrow_mut()
            .get_mut(index)
            .and_then(Option::take)
    }
}

/// Whether `mounts[i]` is to be idmapped.
pub fn wanted(m: &Mount) -> bool {
    let o = options::parse(m.options().as_deref().unwrap_or_default());
    o.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some()
}

/// Make every idmapped tree of `spec` now, in the runtime's own namespaces: for a
/// container with a user namespace, call this before cloning its init and pass the result
/// in [`super::Setup::idmapped`].
pub fn premake(spec: &Spec, bundle: &Path) -> Result<Premade> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let mut trees = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        if !wanted(m) {
            trees.push(None);
            continue;
        }
        let make = || -> Result<OwnedFd> {
            let o = options::parse(m.options().as_deref().unwrap_or_default());
            let src = super::mounts::bind_source(m, bundle)?;
            let tree = mountapi::clone_path(&src, o.is_rbind())?;
            apply(&tree, m, spec, o.idmap)?;
            Ok(tree)
        };
        let tree = make()
            .with_ctx(|| format!("config.json mounts[{i}] ({})", m.destination().display()))?;
        trees.push(Some(tree));
    }
    Ok(Premade {
        trees: RefCell::new(trees),
    })
}

/// Idmap the detached tree `tree` with `m`'s mappings (or the container's).
pub fn apply(tree: &OwnedFd, m: &Mount, spec: &Spec, how: Option<Idmap>) -> Result<()> {
    let (uids, gids) = mappings(m, spec)?;
    let ns = user_namespace(uids, gids)?;
    let a = MountAttr {
        attr_set: attr::IDMAP,
        userns_fd: ns.as_raw_fd() as u64,
        ..Default::default()
    };
    mountapi::setattr(tree.as_fd(), how == Some(Idmap::Recursive), &a)
        .ctx("idmap the mount (the source's filesystem must support idmapped mounts)")
}

fn mappings<'a>(
    m: &'a Mount,
    spec: &'a Spec,
) -> Result<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])> {
    let uids = m.uid_mappings().as_deref().unwrap_or_default();
    let gids = m.gid_mappings().as_deref().unwrap_or_default();
    if uids.is_empty() && gids.is_empty() {
        let l = spec.linux().as_ref();
        let uids = l
            .and_then(|l| l.uid_mappings().as_deref())
            .unwrap_or_default();
        let gids = l
            .and_then(|l| l.gid_mappings().as_deref())
            .unwrap_or_default();
        if uids.is_empty() || gids.is_empty() {
            return Err(err!(
                "idmap without uidMappings and gidMappings of its own takes the container's linux.uidMappings and linux.gidMappings, and there are none"
            ));
        }
        return Ok((uids, gids));
    }
    if uids.is_empty() {
        return Err(err!(
            "uidMappings: missing; an idmapped mount needs both uidMappings and gidMappings"
        ));
    }
    if gids.is_empty() {
        return Err(err!(
            "gidMappings: missing; an idmapped mount needs both uidMappings and gidMappings"
        ));
    }
    Ok((uids, gids))
}

fn map_text(list: &[LinuxIdMapping]) -> String {
    list.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A child of ours, parked in a new user namespace until dropped.
struct Helper {
    pid: Pid,
    pidfd: OwnedFd,
    /// Closing it lets the child exit.
    release: Option<OwnedFd>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.release.take());
        if nix::sys::wait::waitpid(self.pid, None).is_err() {
            crate::process::kill_and_reap(self.pid, &self.pidfd);
        }
    }
}

/// A user namespace with these mappings, as an fd.
fn user_namespace(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (wait_r, wait_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe for the idmap helper")?;
    let Some((pid, pidfd)) = crate::process::clone3(CloneFlags::CLONE_NEWUSER)
        .ctx("make a user namespace for the idmapped mount")?
    else {
        // The helper: wait until the parent closes its end, then leave. Only
        // async-signal-safe calls here, as in any child of a fork. The child's copy of the
        // write end is closed first, or the read would never see the end of the pipe.
        drop(wait_w);
        let mut b = [0u8; 1];
        // SAFETY: read into a one-byte buffer we own, on the pipe's read end.
        unsafe { libc::read(wait_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        // SAFETY: _exit ends the helper without running the parent's destructors.
        unsafe { libc::_exit(0) }
    };
    drop(wait_r);
    let helper = Helper {
        pid,
        pidfd,
        release: Some(wait_w),
    };
    let proc = HostProc::open()?;
    let host_pid = proc.pid_of(&helper.pidfd)?;
    let writer = ProcFs::host()?;
    writer
        .write(&format!("{host_pid}/uid_map"), map_text(uids).as_bytes())
        .ctx("uidMappings")?;
    writer
        .write(&format!("{host_pid}/gid_map"), map_text(gids).as_bytes())
        .ctx("gidMappings")?;
    let ns = proc.user_namespace(host_pid)?;
    drop(helper);
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// What `process::spawn` is to do for a container with a user namespace: the trees are
    /// made before the clone, and the init, in its user namespace, attaches them.
    /// `cargo test --bins rootfs::idmap -- --ignored --test-threads=1` (as root).
    #[test]
    #[ignore = "needs root, and forks: run with --ignored --test-threads=1"]
    fn premade_trees_attach_inside_a_user_namespace() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let d = std::env::temp_dir().join(format!("berth-idmap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::create_dir_all(d.join("target")).unwrap();
        std::fs::write(d.join("src/f"), "").unwrap();
        let maps = serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": { "path": "rootfs" },
            "mounts": [
                { "destination": "/plain", "type": "bind", "source": "src", "options": ["bind"] },
                { "destination": "/x", "type": "bind", "source": "src", "options": ["bind"],
                  "uidMappings": maps, "gidMappings": maps }
            ]
        }))
        .unwrap();
        let premade = premake(&spec, &d).unwrap();
        let tree = premade.take(1).expect("a tree for mounts[1]");
        assert!(premade.take(0).is_none() && premade.take(1).is_none());
        let (go_r, go_w) = nix::unistd::pipe().unwrap();
        let (res_r, res_w) = nix::unistd::pipe().unwrap();
        let target_path =
            std::ffi::CString::new(d.join("target").as_os_str().as_encoded_bytes()).unwrap();
        let flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
        let Some((pid, pidfd)) = crate::process::clone3(flags).unwrap() else {
            // The child: wait for its mappings, attach the premade tree, report the owner
            // of the file through it as this user namespace sees it.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&go_r, &mut b);
            // The mount point is opened here, in the child's own mount namespace: an fd
            // opened before the clone names the parent's, where this process may not mount.
            // SAFETY: open of a NUL-terminated path made before the clone.
            let fd = unsafe { libc::open(target_path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
            // SAFETY: the fd just returned, ours.
            let target = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            // As mounts::entry does next: the bind's own flags, set from inside.
            let ro = MountAttr {
                attr_set: attr::RDONLY | attr::NOSUID,
                ..Default::default()
            };
            let set = mountapi::setattr(tree.as_fd(), false, &ro);
            let uid = match set.and_then(|()| mountapi::move_mount(tree.as_fd(), target.as_fd())) {
                // The tree's fd names the mount, now attached.
                Ok(()) => nix::sys::stat::fstatat(tree.as_fd(), "f", nix::fcntl::AtFlags::empty())
                    .map_or(u32::MAX - 1, |st| st.st_uid),
                Err(_) => u32::MAX,
            };
            let _ = nix::unistd::write(&res_w, &uid.to_le_bytes());
            // SAFETY: leave the child without running the harness's destructors.
            unsafe { libc::_exit(0) }
        };
        drop(res_w);
        let writer = ProcFs::host().unwrap();
        writer
            .write(&format!("{pid}/uid_map"), b"0 100000 65536\n")
            .unwrap();
        writer
            .write(&format!("{pid}/gid_map"), b"0 100000 65536\n")
            .unwrap();
        nix::unistd::write(&go_w, b"g").unwrap();
        let mut b = [0u8; 4];
        let n = nix::unistd::read(&res_r, &mut b).unwrap();
        crate::process::kill_and_reap(pid, &pidfd);
        assert_eq!(n, 4);
        // Owned by 0 on disk, by host 100000 through the idmapped mount: root inside a
        // user namespace that maps 0 to 100000 (65534 if the mount were not idmapped).
        assert_eq!(u32::from_le_bytes(b), 0);
        assert_eq!(std::fs::metadata(d.join("src/f")).unwrap().uid(), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
