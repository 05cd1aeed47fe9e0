//! One entry of `mounts[]`.
//!
//! Every kind of mount goes the same way:
//! 1. a detached mount is made: a clone of the source for binds (`open_tree`), a new
//!    filesystem otherwise (`fsopen` … `fsmount`), an idmapped clone for `idmap`;
//! 2. its attributes are set while it is invisible: the plain flags (`ro` makes a bind
//!    read-only from the first instant, no remount window), the recursive `r*` words, and
//!    a `tmpcopyup` tmpfs is filled;
//! 3. the destination is resolved inside the root and checked (or made) as a directory or
//!    a file, matching the source;
//! 4. the mount is attached on that fd (`move_mount`), and its propagation set through
//!    the mount's own fd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{SFlag, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::mountapi::{self, FsContext, MountAttr, attr};
use super::options::{self, MountOptions};
use super::path::{Kind, Root, file_type};
use super::{Setup, cgroupfs, copyup, idmap, label, overlay};
use crate::err;
use crate::error::{Context, Result};

pub fn entry(root: &Root, s: &Setup, index: usize, m: &Mount) -> Result<()> {
    let o = options::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let bind = o.is_bind() || typ == "bind";
    let mapped = m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if (o.idmap.is_some() || mapped) && !bind {
        return Err(err!(
            "idmap, ridmap, uidMappings and gidMappings are only for bind mounts (options bind or rbind)"
        ));
    }
    if o.tmpcopyup && typ != "tmpfs" {
        return Err(err!(
            "option tmpcopyup is only for tmpfs mounts, not {typ:?}"
        ));
    }
    if o.flags.contains(MsFlags::MS_REMOUNT) {
        return remount(root, dest, typ, bind, &o);
    }
    if typ == "cgroup" && !bind {
        return cgroupfs::mount(
            root,
            dest,
            &o,
            has_namespace(s.spec, LinuxNamespaceType::Cgroup),
        );
    }
    let (mnt, target) = if bind {
        let src = bind_source(m, s.bundle)?;
        let mnt = match s.idmapped.and_then(|p| p.take(index)) {
            Some(fd) => fd,
            None => {
                let mnt = mountapi::clone_path(&src, o.is_rbind())?;
                if o.idmap.is_some() || mapped {
                    if s.userns {
                        return Err(err!(
                            "an idmapped mount in a container with its own user namespace must be made by the runtime before the container's init starts (rootfs::idmap::premake), and was not"
                        ));
                    }
                    idmap::apply(&mnt, m, s.spec, o.idmap)?;
                }
                mnt
            }
        };
        let st = fstat(mnt.as_fd()).with_ctx(|| format!("stat {}", src.display()))?;
        let kind = if file_type(st.st_mode) == SFlag::S_IFDIR {
            Kind::Dir
        } else {
            Kind::File
        };
        let target = root.mount_point(dest, kind, &format!("the source {}", src.display()))?;
        mountapi::setattr(mnt.as_fd(), false, &o.mount_attr())
            .ctx("set the bind mount's options")?;
        (mnt, target)
    } else {
        new_filesystem(root, s, m, typ, o.clone())?
    };
    not_inside_proc(root, &target, typ)?;
    mountapi::setattr(mnt.as_fd(), true, &o.recursive_attr())
        .ctx("set the recursive mount attributes")?;
    mountapi::move_mount(mnt.as_fd(), target.as_fd())
        .with_ctx(|| format!("attach on {}", root.shown(dest)))?;
    set_propagation(&mnt, &o.propagation)
}

/// A bind mount's source: absolute, or relative to the bundle.
pub(super) fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    let src = m
        .source()
        .as_deref()
        .ok_or_else(|| err!("a bind mount needs a source"))?;
    Ok(if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    })
}

/// Whether the container has a namespace of type `t` of its own (new or joined).
fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

/// A new filesystem of type `typ`, detached and configured, with the fd of the directory
/// it is to be attached on.
fn new_filesystem(
    root: &Root,
    s: &Setup,
    m: &Mount,
    typ: &str,
    mut o: MountOptions,
) -> Result<(OwnedFd, OwnedFd)> {
    let dest = m.destination();
    if typ.is_empty() {
        return Err(err!("a mount that is not a bind needs a type"));
    }
    let target = if typ == "proc" || typ == "sysfs" {
        // A /proc or /sys that is a symlink in the image would put the kernel's files
        // where the image chooses, for example under a path that is later bound
        // read-write or skipped by maskedPaths (youki CVE-2025-54867; runc refuses it
        // too). They are mounted only on a real directory, reached without any symlink.
        real_directory(root, dest, typ)?
    } else {
        root.mount_point(dest, Kind::Dir, &format!("a {typ} filesystem"))?
    };
    if typ == "sysfs" && !has_namespace(s.spec, LinuxNamespaceType::Network) {
        // Without a network namespace of its own, /sys/class/net and friends are the
        // host's: the container gets them read-only, as with runc.
        o.flags |= MsFlags::MS_RDONLY;
    }
    if typ == "overlay" {
        overlay::check(&mut o.data, s.bundle)?;
    }
    let source = m
        .source()
        .as_deref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let made = (|| {
        let fs = FsContext::open(typ)?;
        fs.set_string("source", &source)?;
        for f in o.superblock_flags() {
            fs.set_flag(f)?;
        }
        if let Some((key, value)) = label::mount_option(s.spec, typ) {
            fs.set_string(key, &value)?;
        }
        for word in &o.data {
            match word.split_once('=') {
                Some((k, v)) => fs.set_string(k, v)?,
                None => fs.set_flag(word)?,
            }
        }
        fs.mount(o.fsmount_attr())
    })();
    let mnt = match made {
        Ok(mnt) => mnt,
        Err(e) if typ == "sysfs" && s.userns && e.errno() == Some(Errno::EPERM) => {
            // A user namespace without a network namespace of its own may not mount
            // sysfs: give it the host's /sys, read-only, as runc does.
            log::debug!("sysfs: {e}; binding the host's /sys read-only instead");
            let mnt = mountapi::clone_path(Path::new("/sys"), true)?;
            let ro = MountAttr {
                attr_set: attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
                ..Default::default()
            };
            mountapi::setattr(mnt.as_fd(), true, &ro)?;
            mnt
        }
        Err(e) => return Err(e),
    };
    label::after_mount(s.spec, typ, &mnt)?;
    if o.tmpcopyup {
        copyup::copy(&target, &mnt).ctx("tmpcopyup: copy what the image has there")?;
    }
    Ok((mnt, target))
}

/// Files below /proc that a mount may cover: what lxcfs emulates, as runc allows.
const PROC_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Refuse a mount whose target, once resolved, is inside the container's procfs (but
/// for the few files lxcfs emulates). A volume or an image symlink that puts a mount
/// over `/proc/self/attr` or `/proc/sys` would redirect the LSM label or sysctl writes
/// made there, or hide them: CVE-2019-16884, and its regression through symlinks,
/// CVE-2023-27561. The target is judged by where it really is (its filesystem), not by
/// the destination string, so a symlink to /proc does not get around the check.
pub(super) fn not_inside_proc(root: &Root, target: &OwnedFd, typ: &str) -> Result<()> {
    let st = fstatfs(target.as_fd()).ctx("statfs the mount point")?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        return Ok(());
    }
    let own = |fd: BorrowedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let (Ok(at), Ok(top)) = (own(target.as_fd()), own(root.fd())) else {
        return Err(err!(
            "the mount point is inside /proc, and where could not be read"
        ));
    };
    let rel = at.strip_prefix(&top).unwrap_or(&at);
    if (rel == Path::new("proc") && typ == "proc")
        || PROC_ALLOWED.iter().any(|p| rel == Path::new(p))
    {
        return Ok(());
    }
    Err(err!(
        "the mount point /{} is inside /proc: only proc itself, and the files lxcfs emulates, may be mounted there",
        rel.display()
    ))
}

/// Open `dest` as a directory reached without any symlink, making it when missing.
fn real_directory(root: &Root, dest: &Path, typ: &str) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let refuse = |what: &str| {
        err!(
            "{typ} is only mounted on a real directory, and {} {what} (a symlink in the image is refused)",
            root.shown(dest)
        )
    };
    match root.open_no_symlinks(dest, flags) {
        Ok(fd) => Ok(fd),
        Err(e) if e.errno() == Some(Errno::ELOOP) => Err(refuse("is or goes through a symlink")),
        Err(e) if e.errno() == Some(Errno::ENOTDIR) => Err(refuse("is not a directory")),
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            root.mkdir_all(dest, 0o755)?;
            match root.open_no_symlinks(dest, flags) {
                Err(e) if e.errno() == Some(Errno::ELOOP) => {
                    Err(refuse("is or goes through a symlink"))
                }
                r => r,
            }
        }
        Err(e) => Err(e),
    }
}

/// Set each propagation word, in order, on the attached mount `mnt`.
pub fn set_propagation(mnt: &OwnedFd, words: &[MsFlags]) -> Result<()> {
    for p in words {
        let recursive = p.contains(MsFlags::MS_REC);
        let a = MountAttr {
            propagation: (*p - MsFlags::MS_REC).bits(),
            ..Default::default()
        };
        mountapi::setattr(mnt.as_fd(), recursive, &a).ctx("set propagation")?;
    }
    Ok(())
}

/// `remount`: change the options of what is already mounted at `dest`. The per-mount
/// flags are set on that mount; without `bind`, filesystem options go to its superblock.
fn remount(root: &Root, dest: &Path, typ: &str, bind: bool, o: &MountOptions) -> Result<()> {
    let target = root.resolve(dest)?;
    mountapi::setattr(target.as_fd(), false, &o.mount_attr()).ctx("remount")?;
    if !bind && (!o.data.is_empty() || !o.superblock_flags().is_empty()) {
        let fs = FsContext::pick(target.as_fd(), typ)?;
        for f in o.superblock_flags() {
            fs.set_flag(f)?;
        }
        for word in &o.data {
            match word.split_once('=') {
                Some((k, v)) => fs.set_string(k, v)?,
                None => fs.set_flag(word)?,
            }
        }
        fs.reconfigure()?;
    }
    mountapi::setattr(target.as_fd(), true, &o.recursive_attr())?;
    set_propagation(&target, &o.propagation)
}
