//! The container's root filesystem, built inside the init's new mount namespace:
//!
//! 1. `/` becomes a recursive slave (or what rootfsPropagation says), and the rootfs's
//!    parent mount private, so nothing mounted here reaches the host ([`propagation`]);
//! 2. the rootfs is bind-mounted on itself (a clone of it attached on it), making it a
//!    mount of its own: the fd of that mount is the [`path::Root`] of everything after;
//! 3. `mounts[]` in config order ([`mounts`]), each target resolved inside the root by fd;
//! 4. `/dev`: default nodes, `linux.devices`, the standard symlinks;
//! 5. `linux.maskedPaths`, `linux.readonlyPaths`, then `root.readonly`;
//! 6. `pivot_root` (or `MS_MOVE` + `chroot` with `--no-pivot`), old root detached;
//! 7. `linux.rootfsPropagation`.
//!
//! Every path inside the root goes through [`path::Root`]; every mount is made detached and
//! attached by fd ([`mountapi`]).

#[cfg(test)]
mod bench;
mod cgroupfs;
pub mod console;
mod copyup;
mod dev;
mod hide;
mod hostproc;
pub mod idmap;
mod label;
pub mod mountapi;
mod mounts;
pub mod options;
mod overlay;
pub mod path;
mod propagation;

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, fchdir, pivot_root};
use oci_spec::runtime::Spec;

use crate::err;
use crate::error::{Context, Result};
use mountapi::{MountAttr, attr};
use path::Root;

pub struct Setup<'a> {
    /// Called after every mount, before pivot_root: the createRuntime/createContainer
    /// hook point.
    pub before_pivot: &'a mut dyn FnMut() -> Result<()>,
    /// Returns once the init is in the container's cgroup (and cgroup namespace): called
    /// before the first cgroup mount, and before `before_pivot` in any case.
    pub placed: &'a dyn Fn() -> Result<()>,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    /// The init is in a user namespace it created: device nodes are bind-mounted, not made.
    pub userns: bool,
    /// The container has a mount namespace of its own. Without one it shares the
    /// runtime's mount table: nothing is mounted (it would land on the host) and the init
    /// only chroots into the rootfs.
    pub mount_ns: bool,
    /// process.terminal: make a pty, sized (rows, cols) when given.
    pub terminal: Option<Option<(u16, u16)>>,
    /// Idmapped mounts made by the runtime before the init was cloned ([`idmap::premake`]):
    /// needed when the init is in a user namespace of its own.
    pub idmapped: Option<&'a idmap::Premade>,
}

/// Build the root filesystem; the container's terminal when process.terminal is set.
pub fn prepare(s: &mut Setup) -> Result<Option<console::Console>> {
    if !s.mount_ns {
        if s.terminal.is_some() {
            return Err(err!(
                "config.json process.terminal: needs a mount namespace in linux.namespaces, for the container's own /dev/pts"
            ));
        }
        (s.placed)()?;
        return chroot_only(s).map(|()| None);
    }
    let (root, console) = build(s)?;
    (s.placed)()?;
    (s.before_pivot)()?;

    propagation::before_pivot(s.spec)?;
    if s.no_pivot {
        move_root(&root)?;
    } else {
        pivot(&root)?;
    }
    drop(root);

    propagation::after_pivot(s.spec)?;
    Ok(console)
}

/// Steps 1 to 5: everything before pivot_root. The rootfs mount (as a [`Root`]) and the
/// terminal are returned.
fn build(s: &Setup) -> Result<(Root, Option<console::Console>)> {
    propagation::before_mounts(s.spec, s.rootfs)?;
    let root = bind_rootfs(s.rootfs)?;
    label::note(s.spec);

    let mounts = s.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            (s.placed)()?;
        }
        mounts::entry(&root, s, i, m)
            .with_ctx(|| format!("config.json mounts[{i}] ({})", m.destination().display()))?;
    }

    let dev_bound = mounts.iter().any(|m| {
        path::relative(m.destination()) == Path::new("dev") && options::parse(opts(m)).is_bind()
    });
    if !dev_bound {
        dev::populate(&root, s.spec, s.userns)?;
    }
    dev::symlinks(&root, mounts)?;
    let console = match s.terminal {
        Some(size) => Some(console::create(&root, size).ctx("config.json process.terminal")?),
        None => None,
    };

    if let Some(linux) = s.spec.linux() {
        let masked = linux.masked_paths().as_deref().unwrap_or_default();
        if !masked.is_empty() {
            let null = hide::host_dev_null()?;
            for (i, p) in masked.iter().enumerate() {
                hide::mask(&root, Path::new(p), &null)
                    .with_ctx(|| format!("config.json linux.maskedPaths[{i}] ({p})"))?;
            }
        }
        for (i, p) in linux
            .readonly_paths()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            hide::readonly(&root, Path::new(p))
                .with_ctx(|| format!("config.json linux.readonlyPaths[{i}] ({p})"))?;
        }
    }
    let ro_root = s
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if ro_root {
        let ro = MountAttr {
            attr_set: attr::RDONLY,
            ..Default::default()
        };
        mountapi::setattr(root.fd(), false, &ro)
            .ctx("config.json root.readonly: make the root mount read-only")?;
    }
    Ok((root, console))
}

fn opts(m: &oci_spec::runtime::Mount) -> &[String] {
    m.options().as_deref().unwrap_or_default()
}

/// Bind the rootfs on itself: a recursive clone of the mount tree at `rootfs`, attached on
/// it. The clone's fd is the root of all resolution from here on, and the mount that
/// pivot_root makes the container's `/`.
fn bind_rootfs(rootfs: &Path) -> Result<Root> {
    let field = || format!("config.json root.path: bind {} on itself", rootfs.display());
    let target = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("config.json root.path: open {}", rootfs.display()))?;
    let tree =
        mountapi::clone_fd(target.as_fd(), true, &rootfs.display().to_string()).with_ctx(field)?;
    mountapi::move_mount(tree.as_fd(), target.as_fd()).with_ctx(field)?;
    Ok(Root::from_fd(tree, rootfs))
}

/// `pivot_root(".", ".")` stacks the old root under the new one; it is then made a slave
/// (so the detach does not propagate to the host) and detached.
fn pivot(root: &Root) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("pivot_root: open /")?;
    fchdir(root.fd()).ctx("pivot_root: chdir to the rootfs")?;
    pivot_root(".", ".").with_ctx(|| format!("pivot_root to {}", root.shown(Path::new("/"))))?;
    fchdir(old.as_fd()).ctx("pivot_root: chdir to the old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx("pivot_root: make the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("pivot_root: detach the old root")?;
    chdir("/").ctx("pivot_root: chdir /")
}

fn chroot_only(s: &mut Setup) -> Result<()> {
    let ignored = s.spec.mounts().as_ref().map_or(0, Vec::len);
    if ignored > 0 {
        log::warn!(
            "config.json mounts: {ignored} entries not mounted: without a mount namespace in linux.namespaces they would be mounted on the host"
        );
    }
    (s.before_pivot)()?;
    nix::unistd::chroot(s.rootfs)
        .with_ctx(|| format!("config.json root.path: chroot {}", s.rootfs.display()))?;
    chdir("/").ctx("chdir / after chroot")
}

/// `--no-pivot`: move the rootfs mount over `/` and chroot into it.
fn move_root(root: &Root) -> Result<()> {
    fchdir(root.fd()).ctx("--no-pivot: chdir to the rootfs")?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .ctx("--no-pivot: move the rootfs to /")?;
    nix::unistd::chroot(".").ctx("--no-pivot: chroot")?;
    chdir("/").ctx("--no-pivot: chdir /")
}
