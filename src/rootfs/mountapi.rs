//! The kernel's file-descriptor mount API, as thin wrappers: `open_tree`, `fsopen` /
//! `fsconfig` / `fsmount`, `mount_setattr` and `move_mount`.
//!
//! Every mount berth makes inside the rootfs is built this way: a detached mount is made
//! (a clone of a host path, or a new filesystem), its attributes are set while nobody can
//! see it, and it is then attached onto an fd of the target that [`super::path::Root`]
//! resolved. Nothing is looked up by path after the mount, so a rename or symlink swap in
//! a shared volume cannot redirect a remount or a propagation change to another mount
//! (CVE-2021-30465: a symlink swapped in between checking a mount destination and
//! mounting on it). The mount fd keeps naming the new mount after it is attached, so later
//! steps (propagation, recursive attributes) act on it by fd too. Where a mount may land
//! at all (not inside /proc: CVE-2019-16884, CVE-2023-27561) is checked in
//! [`super::mounts`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use crate::err;
use crate::error::{Context, Result};

// From <linux/mount.h>; the libc crate does not carry them for glibc targets.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSCONFIG_CMD_RECONFIGURE: libc::c_uint = 7;
const FSPICK_CLOEXEC: libc::c_uint = 0x01;
const FSPICK_EMPTY_PATH: libc::c_uint = 0x08;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// `MOUNT_ATTR_*`: per-mount attributes, as `mount_setattr` and `fsmount` take them.
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    /// The access-time field: one of the three values below, not a set of bits.
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const IDMAP: u64 = 0x0010_0000;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        *self == MountAttr::default()
    }
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| err!("{}: contains a NUL byte", p.display()))
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| err!("{s:?}: contains a NUL byte"))
}

fn owned(r: libc::c_long) -> nix::Result<OwnedFd> {
    Errno::result(r).map(|fd| {
        // SAFETY: the kernel just returned this new fd to us, and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// A detached copy of the mount tree at host path `path` (all of it with `recursive`),
/// as `mount --bind` / `--rbind` would attach it.
pub fn clone_path(path: &Path, recursive: bool) -> Result<OwnedFd> {
    let c = cpath(path)?;
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads one NUL-terminated path that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    owned(r).with_ctx(|| format!("open_tree {}", path.display()))
}

/// A detached copy of the mount tree at an already opened file or directory.
pub fn clone_fd(fd: BorrowedFd, recursive: bool, what: &str) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: an fd we borrow and an empty NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    owned(r).with_ctx(|| format!("open_tree {what}"))
}

/// Attach the detached mount `mnt` on the file or directory `target`.
pub fn move_mount(mnt: BorrowedFd, target: BorrowedFd) -> Result<()> {
    // SAFETY: two fds we borrow and two empty NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop).ctx("move_mount")
}

/// `mount_setattr` on the mount at `fd`; with `recursive`, on every mount below it too.
pub fn setattr(fd: BorrowedFd, recursive: bool, a: &MountAttr) -> Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: an fd we borrow, an empty path, and a pointer to a `struct mount_attr` of the
    // size passed, valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop).with_ctx(|| {
        format!(
            "mount_setattr{} set {:#x} clear {:#x}{}",
            if recursive { " (recursive)" } else { "" },
            a.attr_set,
            a.attr_clr,
            if a.propagation != 0 {
                format!(" propagation {:#x}", a.propagation)
            } else {
                String::new()
            }
        )
    })
}

/// A filesystem context from `fsopen`: configured key by key, then made into a mount.
pub struct FsContext {
    fd: OwnedFd,
    typ: String,
}

impl FsContext {
    pub fn open(typ: &str) -> Result<FsContext> {
        let c = cstr(typ)?;
        // SAFETY: fsopen reads one NUL-terminated string that outlives the call.
        let r = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), FSOPEN_CLOEXEC) };
        let fd = owned(r).with_ctx(|| format!("fsopen {typ}"))?;
        Ok(FsContext {
            fd,
            typ: typ.to_string(),
        })
    }

    /// The context of the filesystem mounted at `fd`, to change its options (a remount).
    pub fn pick(fd: BorrowedFd, what: &str) -> Result<FsContext> {
        // SAFETY: an fd we borrow, an empty NUL-terminated path and integer flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fspick,
                fd.as_raw_fd(),
                c"".as_ptr(),
                FSPICK_CLOEXEC | FSPICK_EMPTY_PATH,
            )
        };
        let fd = owned(r).with_ctx(|| format!("fspick {what}"))?;
        Ok(FsContext {
            fd,
            typ: what.to_string(),
        })
    }

    /// Apply the options set since [`FsContext::pick`] to the live superblock.
    pub fn reconfigure(self) -> Result<()> {
        self.config(FSCONFIG_CMD_RECONFIGURE, None, None)
            .with_ctx(|| format!("reconfigure {}", self.typ))
    }

    fn config(&self, cmd: libc::c_uint, key: Option<&str>, value: Option<&str>) -> Result<()> {
        let key = key.map(cstr).transpose()?;
        let value = value.map(cstr).transpose()?;
        let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: the key and value are NUL-terminated strings (or null, as the command
        // allows) that outlive the call, on an fs context fd we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                cmd,
                ptr(&key),
                ptr(&value),
                0,
            )
        };
        Errno::result(r).map(drop).map_err(|e| {
            let log = self.log();
            let e = crate::error::Error::from(e);
            if log.is_empty() { e } else { e.context(log) }
        })
    }

    /// A `key=value` option.
    pub fn set_string(&self, key: &str, value: &str) -> Result<()> {
        self.config(FSCONFIG_SET_STRING, Some(key), Some(value))
            .with_ctx(|| format!("{} option {key}={value}", self.typ))
    }

    /// A bare option word.
    pub fn set_flag(&self, key: &str) -> Result<()> {
        self.config(FSCONFIG_SET_FLAG, Some(key), None)
            .with_ctx(|| format!("{} option {key}", self.typ))
    }

    /// Make the superblock, then a detached mount of it with `attr_flags` (`MOUNT_ATTR_*`).
    pub fn mount(self, attr_flags: u64) -> Result<OwnedFd> {
        self.config(FSCONFIG_CMD_CREATE, None, None)
            .with_ctx(|| format!("create a {} filesystem", self.typ))?;
        // SAFETY: fsmount takes the fs context fd we own and integer flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.fd.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                attr_flags as libc::c_uint,
            )
        };
        owned(r).map_err(|e| {
            let log = self.log();
            let e = crate::error::Error::from(e);
            let e = if log.is_empty() { e } else { e.context(log) };
            e.context(format!("fsmount {}", self.typ))
        })
    }

    /// The messages the kernel logged on this context ("e tmpfs: Bad value for 'size'"),
    /// joined; empty when there are none.
    fn log(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut buf = [0u8; 512];
        // The kernel keeps at most 8 messages; each read takes one.
        for _ in 0..8 {
            match nix::unistd::read(self.fd.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let line = String::from_utf8_lossy(&buf[..n]);
                    let line = line.trim();
                    // "e ", "w " or "i " before the text: error, warning, info.
                    let text = line.get(2..).unwrap_or(line);
                    out.push(text.to_string());
                }
                _ => break,
            }
        }
        out.join("; ")
    }
}
