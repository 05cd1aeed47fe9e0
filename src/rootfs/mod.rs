//! The container's root filesystem, built inside the init's new mount namespace:
//!
//! 1. `/` becomes a recursive slave, so nothing mounted here reaches the host;
//! 2. the rootfs is bind-mounted on itself, making it a mount point;
//! 3. `mounts[]` in config order, each target resolved inside the root by fd;
//! 4. `/dev`: default nodes, `linux.devices`, the standard symlinks;
//! 5. `linux.maskedPaths`, `linux.readonlyPaths`, then `root.readonly`;
//! 6. `pivot_root` (or `MS_MOVE` + `chroot` with `--no-pivot`), old root detached;
//! 7. `linux.rootfsPropagation`.
//!
//! Every path inside the root goes through [`path::Root`].

mod cgroupfs;
pub mod console;
mod dev;
pub mod options;
pub mod path;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use nix::unistd::{chdir, fchdir, pivot_root};
use oci_spec::runtime::{Mount, Spec};

use crate::err;
use crate::error::{Context, Result};
use path::{Kind, Root, fd_path};

pub struct Setup<'a> {
    /// Called after every mount, before pivot_root: the createRuntime/createContainer
    /// hook point.
    pub before_pivot: &'a mut dyn FnMut() -> Result<()>,
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
}

/// Build the root filesystem; the container's terminal when process.terminal is set.
pub fn prepare(s: &mut Setup) -> Result<Option<console::Console>> {
    if !s.mount_ns {
        if s.terminal.is_some() {
            return Err(err!(
                "config.json process.terminal: needs a mount namespace in linux.namespaces, for the container's own /dev/pts"
            ));
        }
        return chroot_only(s).map(|()| None);
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx("make / a recursive slave in the container's mount namespace")?;
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| {
        format!(
            "config.json root.path: bind {} on itself",
            s.rootfs.display()
        )
    })?;
    let root = Root::open(s.rootfs)?;

    let mounts = s.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        mount_entry(&root, s, m)
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
        for (i, p) in linux
            .masked_paths()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            mask(&root, Path::new(p))
                .with_ctx(|| format!("config.json linux.maskedPaths[{i}] ({p})"))?;
        }
        for (i, p) in linux
            .readonly_paths()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            readonly(&root, Path::new(p))
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
        let top = root.resolve(Path::new("/"))?;
        remount(&top, MsFlags::MS_RDONLY).ctx("config.json root.readonly: remount read-only")?;
    }
    drop(root);
    (s.before_pivot)()?;

    if s.no_pivot {
        move_root(s.rootfs)?;
    } else {
        pivot(s.rootfs)?;
    }

    if let Some(p) = s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    {
        let flag = options::PROPAGATION
            .iter()
            .find(|(n, _)| *n == p)
            .map(|(_, f)| *f)
            .ok_or_else(|| err!("config.json linux.rootfsPropagation: unknown value {p:?}"))?;
        mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
            .with_ctx(|| format!("config.json linux.rootfsPropagation: make / {p}"))?;
    }
    Ok(console)
}

fn opts(m: &Mount) -> &[String] {
    m.options().as_deref().unwrap_or_default()
}

fn mount_entry(root: &Root, s: &Setup, m: &Mount) -> Result<()> {
    let o = options::parse(opts(m));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" && !o.is_bind() {
        return cgroupfs::mount(root, dest, o.flags);
    }
    let target = if o.is_bind() || typ == "bind" {
        let src = m
            .source()
            .as_deref()
            .ok_or_else(|| err!("a bind mount needs a source"))?;
        let src = if src.is_absolute() {
            src.to_path_buf()
        } else {
            s.bundle.join(src)
        };
        let meta = std::fs::metadata(&src).with_ctx(|| format!("source {}", src.display()))?;
        let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
        let target = root.create(dest, kind, 0o755)?;
        let bind = MsFlags::MS_BIND | (o.flags & MsFlags::MS_REC);
        mount(
            Some(&src),
            &fd_path(&target),
            None::<&str>,
            bind,
            None::<&str>,
        )
        .with_ctx(|| format!("bind {}", src.display()))?;
        let top = root.resolve(dest)?;
        let extra = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount(&top, extra).ctx("remount the bind mount with its options")?;
        }
        top
    } else {
        let target = root.create(dest, Kind::Dir, 0o755)?;
        let src = m
            .source()
            .as_deref()
            .map(|p| p.as_os_str())
            .unwrap_or(typ.as_ref());
        let data = (!o.data.is_empty()).then_some(o.data.as_str());
        mount(Some(src), &fd_path(&target), Some(typ), o.flags, data)
            .with_ctx(|| format!("mount {typ}"))?;
        root.resolve(dest)?
    };
    for p in &o.propagation {
        mount(
            None::<&str>,
            &fd_path(&target),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .ctx("set propagation")?;
    }
    Ok(())
}

/// Remount the mount at `fd` adding `flags`, keeping the flags the kernel locks in a user
/// namespace (nosuid, nodev, noexec, atime), which a remount may not clear.
fn remount(fd: &OwnedFd, flags: MsFlags) -> Result<()> {
    let st = fstatvfs(fd.as_fd()).ctx("statvfs")?;
    let have = st.flags();
    let mut keep = MsFlags::empty();
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if have.contains(f) {
            keep |= m;
        }
    }
    let all = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | flags;
    mount(None::<&str>, &fd_path(fd), None::<&str>, all, None::<&str>).ctx("remount")
}

/// Hide a path: a directory gets an empty read-only tmpfs, anything else the host's
/// `/dev/null`, checked to be the real character device 1:3 first (CVE-2025-31133: a
/// `/dev/null` swapped for a symlink turns masking into a bind of anything).
fn mask(root: &Root, p: &Path) -> Result<()> {
    let target = match root.resolve(p) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = fstat(target.as_fd()).ctx("stat")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        mount(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ctx("mount a read-only tmpfs over it")
    } else {
        let null = host_dev_null()?;
        mount(
            Some(&fd_path(&null)),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx("bind /dev/null over it")
    }
}

fn host_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx("open host /dev/null")?;
    let st = fstat(fd.as_fd()).ctx("stat host /dev/null")?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        return Err(err!("host /dev/null is not the character device 1:3"));
    }
    Ok(fd)
}

/// Make a path read-only: bind it on itself, then remount read-only.
fn readonly(root: &Root, p: &Path) -> Result<()> {
    let target = match root.resolve(p) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    mount(
        Some(&fd_path(&target)),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx("bind on itself")?;
    let top = root.resolve(p)?;
    remount(
        &top,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )
    .ctx("remount read-only")
}

/// `pivot_root(".", ".")` stacks the old root under the new one; it is then made a slave
/// (so the detach does not propagate to the host) and detached.
fn pivot(rootfs: &Path) -> Result<()> {
    let open_dir = |p: &Path| {
        nix::fcntl::open(
            p,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let old = open_dir(Path::new("/")).ctx("pivot_root: open /")?;
    let new = open_dir(rootfs).with_ctx(|| format!("pivot_root: open {}", rootfs.display()))?;
    fchdir(new.as_fd()).ctx("pivot_root: chdir to the rootfs")?;
    pivot_root(".", ".").with_ctx(|| format!("pivot_root to {}", rootfs.display()))?;
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
fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).with_ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .ctx("--no-pivot: move the rootfs to /")?;
    nix::unistd::chroot(".").ctx("--no-pivot: chroot")?;
    chdir("/").ctx("--no-pivot: chdir /")
}
