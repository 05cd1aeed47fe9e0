//! `/dev` inside the container: the default nodes every container gets, `linux.devices`,
//! and the standard symlinks.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::hostproc::HostProc;
use super::mountapi;
use super::path::{Root, file_type};
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
    if userns {
        // mknod is not allowed in a user namespace: bind the host's node instead, onto a
        // plain file made in place of whatever the image has there (a symlink there
        // would otherwise take the bind elsewhere: CVE-2025-52565's class).
        let target = root.plain_file(n.path, 0o644)?;
        let node = mountapi::clone_path(n.path, false)
            .with_ctx(|| format!("bind host {}", n.path.display()))?;
        return mountapi::move_mount(node.as_fd(), target.as_fd())
            .with_ctx(|| format!("bind host {}", n.path.display()));
    }
    // The node is made by name in its parent directory's fd, and an existing entry (a
    // symlink to a host file, say) is removed, never followed or written through.
    let (parent, name) = root.parent_and_name(n.path)?;
    let dev = makedev(n.major, n.minor);
    let mode = Mode::from_bits_truncate(n.mode);
    match mknodat(parent.as_fd(), name.as_os_str(), n.kind, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = fstatat(
                parent.as_fd(),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .ctx("stat the existing entry")?;
            if file_type(st.st_mode) == SFlag::S_IFDIR {
                return Err(err!(
                    "{} is a directory in the rootfs, where the device goes",
                    n.path.display()
                ));
            }
            unlinkat(parent.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .ctx("replace the existing entry")?;
            mknodat(parent.as_fd(), name.as_os_str(), n.kind, mode, dev).ctx("mknod")?;
        }
        Err(e) => return Err(e).ctx("mknod"),
    }
    fchownat(
        parent.as_fd(),
        name.as_os_str(),
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
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
    // As runc: /dev/core only where the kernel has a /proc/kcore (asked of the host's
    // checked procfs, not of a path).
    if HostProc::open().is_ok_and(|p| p.exists("kcore")) {
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
