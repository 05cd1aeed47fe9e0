//! `/dev` inside the container: the default nodes every container gets, `linux.devices`,
//! and the standard symlinks.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::path::{Kind, Root, fd_path};
use crate::err;
use crate::error::{Context, Result};

/// (path, major, minor): the nodes the spec says every container has.
pub const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

pub fn populate(root: &Root, spec: &Spec, userns: bool) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let r = populate_inner(root, spec, userns);
    nix::sys::stat::umask(old);
    r
}

fn populate_inner(root: &Root, spec: &Spec, userns: bool) -> Result<()> {
    let listed: &[LinuxDevice] = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    for &(p, major, minor) in DEFAULT_DEVICES {
        // A device of the same path in linux.devices wins.
        if listed.iter().any(|d| d.path() == Path::new(p)) {
            continue;
        }
        let n = Node {
            path: Path::new(p),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make(root, &n, userns).with_ctx(|| format!("create default device {p}"))?;
    }
    for (i, d) in listed.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(err!(
                    "config.json linux.devices[{i}]: type \"a\" is not a device node"
                ));
            }
        };
        let n = Node {
            path: d.path(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        make(root, &n, userns)
            .with_ctx(|| format!("config.json linux.devices[{i}] ({})", d.path().display()))?;
    }
    Ok(())
}

fn make(root: &Root, n: &Node, userns: bool) -> Result<()> {
    let rel = super::path::relative(n.path);
    let name = rel.file_name().ok_or_else(|| err!("not a device path"))?;
    let parent = root.mkdir_all(rel.parent().unwrap_or(Path::new("")), 0o755)?;
    if userns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let target = root.create(n.path, Kind::File, 0o644)?;
        return mount(
            Some(n.path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("bind host {}", n.path.display()));
    }
    let dev = makedev(n.major, n.minor);
    match mknodat(
        parent.as_fd(),
        name,
        n.kind,
        Mode::from_bits_truncate(n.mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .ctx("replace existing file")?;
            mknodat(
                parent.as_fd(),
                name,
                n.kind,
                Mode::from_bits_truncate(n.mode),
                dev,
            )
            .ctx("mknod")?;
        }
        Err(e) => return Err(e).ctx("mknod"),
    }
    fchownat(
        parent.as_fd(),
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx("chown")
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core` and, with a devpts at `/dev/pts`,
/// `/dev/ptmx` → `pts/ptmx`.
pub fn symlinks(root: &Root, mounts: &[Mount]) -> Result<()> {
    let dev = match root.resolve(Path::new("/dev")) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    let has_pts = mounts.iter().any(|m| {
        m.typ().as_deref() == Some("devpts")
            && super::path::relative(m.destination()) == Path::new("dev/pts")
    });
    if has_pts {
        match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).ctx("remove /dev/ptmx"),
        }
        links.push(("ptmx", "pts/ptmx"));
    }
    for (name, target) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    Ok(())
}
