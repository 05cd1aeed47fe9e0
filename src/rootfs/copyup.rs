//! `tmpcopyup`: a new tmpfs starts with a copy of what the image has at its destination
//! (the way Docker fills a fresh volume).
//!
//! The copy is made into the tmpfs while it is still detached, so the container never
//! sees it half full. The image side is read by file descriptor only: each entry is opened
//! relative to its parent's fd with `O_NOFOLLOW` and checked to be the inode that was
//! listed, so a symlink in the image is copied as a symlink and never followed out of the
//! rootfs (the class of CVE-2021-30465). Files, directories, symlinks and device nodes are
//! copied with owner, mode and times; sockets are skipped; other mounts found below the
//! destination are not entered.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, fstatat, futimens,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};

use super::path::file_type;
use crate::err;
use crate::error::{Context, Result};

/// Deeper trees than this are refused rather than copied (each level holds two fds).
const MAX_DEPTH: u32 = 128;

/// Copy the contents of directory `src` (an fd of the destination in the image) into the
/// root of the detached mount `dst`.
pub fn copy(src: &OwnedFd, dst: &OwnedFd) -> Result<()> {
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let s = openat(src.as_fd(), ".", dir, Mode::empty()).ctx("open the destination")?;
    let d = openat(dst.as_fd(), ".", dir, Mode::empty()).ctx("open the new tmpfs")?;
    let dev = fstat(s.as_fd()).ctx("stat the destination")?.st_dev;
    copy_dir(&s, &d, dev, "", 0)
}

fn times(st: &libc::stat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn owner(st: &libc::stat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

/// Open `name` below `dir` without following it, and check it is still the inode `st`.
fn open_same(dir: BorrowedFd, name: &OsStr, flags: OFlag, st: &libc::stat) -> Result<OwnedFd> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = openat(dir, name, flags, Mode::empty()).ctx("open")?;
    let now = fstat(fd.as_fd()).ctx("stat")?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(err!("changed while being copied"));
    }
    Ok(fd)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, dev: u64, at: &str, depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(err!("{at}: more than {MAX_DEPTH} directories deep"));
    }
    let listing = openat(
        src.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {at}/"))?;
    let mut entries = nix::dir::Dir::from_fd(listing).with_ctx(|| format!("list {at}/"))?;
    for e in entries.iter() {
        let e = e.with_ctx(|| format!("list {at}/"))?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let shown = format!("{at}/{}", name.to_string_lossy());
        copy_entry(src, dst, name, dev, &shown, depth).with_ctx(|| shown.clone())?;
    }
    Ok(())
}

fn copy_entry(
    src: &OwnedFd,
    dst: &OwnedFd,
    name: &OsStr,
    dev: u64,
    shown: &str,
    depth: u32,
) -> Result<()> {
    let st = fstatat(src.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).ctx("stat")?;
    if st.st_dev != dev {
        // Another mount below the destination: not part of the image's directory.
        return Ok(());
    }
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = owner(&st);
    let (atime, mtime) = times(&st);
    match file_type(st.st_mode) {
        SFlag::S_IFDIR => {
            let from = open_same(src.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &st)?;
            mkdirat(dst.as_fd(), name, Mode::from_bits_truncate(0o700)).ctx("mkdir")?;
            let to = openat(
                dst.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx("open the copy")?;
            copy_dir(&from, &to, dev, shown, depth + 1)?;
            fchown(to.as_fd(), uid, gid).ctx("chown")?;
            fchmod(to.as_fd(), mode).ctx("chmod")?;
            futimens(to.as_fd(), &atime, &mtime).ctx("set times")?;
        }
        SFlag::S_IFREG => {
            // O_NONBLOCK: should the entry turn into a fifo after the check, opening it
            // must not hang (open_same then refuses it as another inode).
            let from = open_same(src.as_fd(), name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, &st)?;
            let to = openat(
                dst.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .ctx("create the copy")?;
            let (mut r, mut w) = (std::fs::File::from(from), std::fs::File::from(to));
            std::io::copy(&mut r, &mut w).ctx("copy")?;
            fchown(w.as_fd(), uid, gid).ctx("chown")?;
            fchmod(w.as_fd(), mode).ctx("chmod")?;
            futimens(w.as_fd(), &atime, &mtime).ctx("set times")?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(src.as_fd(), name).ctx("readlink")?;
            symlinkat(target.as_os_str(), dst.as_fd(), name).ctx("symlink")?;
            fchownat(dst.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).ctx("chown")?;
            utimensat(
                dst.as_fd(),
                name,
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .ctx("set times")?;
        }
        t @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
            mknodat(dst.as_fd(), name, t, mode, st.st_rdev).ctx("mknod")?;
            fchownat(dst.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).ctx("chown")?;
            // The node was just made in a tmpfs nobody else can see yet: following it
            // cannot lead anywhere else.
            fchmodat(dst.as_fd(), name, mode, FchmodatFlags::FollowSymlink).ctx("chmod")?;
            utimensat(
                dst.as_fd(),
                name,
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .ctx("set times")?;
        }
        _ => log::debug!("tmpcopyup: {shown}: a socket, not copied"),
    }
    Ok(())
}
