//! The container's terminal: a pty of the container's own devpts, and `/dev/console`.
//!
//! Every step goes by file descriptor (CVE-2025-52565: a `/dev/pts/N` or `/dev/console`
//! symlink in the image must not redirect the terminal to a host file):
//! - `/dev/pts/ptmx` is opened inside the root and checked to be devpts' ptmx (5:2);
//! - the peer is opened from the master with `TIOCGPTPEER`, never by its name;
//! - `/dev/console` is made a plain file inside the root (an image's symlink or device there
//!   is replaced, never followed) and the peer is bind-mounted on it by fd.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{SFlag, fstat, major, minor};
use nix::sys::statfs::fstatfs;

use super::mountapi;
use super::path::Root;
use crate::err;
use crate::error::{Context, Result};

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// Majors of Unix 98 pty peers (136..=143).
const PTY_PEER_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

pub struct Console {
    pub master: OwnedFd,
    pub peer: OwnedFd,
    /// `/dev/pts/N` as the container sees it.
    pub name: String,
}

fn on_devpts(fd: &OwnedFd, what: &str) -> Result<()> {
    let st = fstatfs(fd.as_fd()).with_ctx(|| format!("statfs {what}"))?;
    if st.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC {
        return Err(err!("{what} is not on a devpts filesystem"));
    }
    Ok(())
}

fn chr(fd: &OwnedFd, what: &str) -> Result<(u64, u64)> {
    let st = fstat(fd.as_fd()).with_ctx(|| format!("stat {what}"))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
        return Err(err!("{what} is not a character device"));
    }
    Ok((major(st.st_rdev), minor(st.st_rdev)))
}

/// Make the pty, size it, and bind its peer on `/dev/console`.
pub fn create(root: &Root, size: Option<(u16, u16)>) -> Result<Console> {
    let c = pty(root, size)?;
    // /dev/console is made a plain file in place of whatever the image has there: a
    // symlink (to a host path or to a file in the image) is removed, not followed.
    let console = root.plain_file(Path::new("/dev/console"), 0o666)?;
    let pty = mountapi::clone_fd(c.peer.as_fd(), false, &c.name)?;
    mountapi::move_mount(pty.as_fd(), console.as_fd()).ctx("bind the pty on /dev/console")?;
    Ok(c)
}

/// A pty of the devpts at `/dev/pts` inside `root`, sized (rows, cols) when given.
pub fn pty(root: &Root, size: Option<(u16, u16)>) -> Result<Console> {
    let what = "/dev/pts/ptmx";
    let master = root
        .open_in(Path::new(what), OFlag::O_RDWR | OFlag::O_NOCTTY)
        .ctx("process.terminal needs a devpts mount at /dev/pts")?;
    on_devpts(&master, what)?;
    if chr(&master, what)? != (5, 2) {
        return Err(err!("{what} is not the pty multiplexer (5:2)"));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(nix::errno::Errno::last()).ctx("unlock the pty (TIOCSPTLCK)");
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(nix::errno::Errno::last()).ctx("pty number (TIOCGPTN)");
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd, which we then own.
    let peer = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if peer < 0 {
        return Err(nix::errno::Errno::last()).ctx("open the pty peer (TIOCGPTPEER)");
    }
    // SAFETY: the kernel just returned this fd to us.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    let name = format!("/dev/pts/{n}");
    on_devpts(&peer, &name)?;
    let (maj, _) = chr(&peer, &name)?;
    if !PTY_PEER_MAJORS.contains(&maj) {
        return Err(err!("{name} is not a pty (major {maj})"));
    }
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        if unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(nix::errno::Errno::last()).ctx("process.consoleSize: TIOCSWINSZ");
        }
    }
    Ok(Console { master, peer, name })
}
