//! `linux.maskedPaths` and `linux.readonlyPaths`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat, major, minor};

use super::mountapi::{self, FsContext, MountAttr, attr};
use super::path::{Root, file_type};
use crate::err;
use crate::error::{Context, Result};

/// The host's `/dev/null`, opened once by fd and checked to be the character device 1:3
/// (CVE-2025-31133: with a `/dev/null` swapped for a symlink or another file, masking by
/// bind mount turns into binding anything, read-write, over a masked path such as
/// `/proc/sysrq-trigger`). Every file mask is a clone of this fd, never of a path.
pub fn host_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx("open host /dev/null")?;
    let st = fstat(fd.as_fd()).ctx("stat host /dev/null")?;
    if file_type(st.st_mode) != SFlag::S_IFCHR || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(err!("host /dev/null is not the character device 1:3"));
    }
    Ok(fd)
}

/// Hide a path: a directory gets an empty read-only tmpfs, anything else a bind of the
/// verified `/dev/null`. A path missing from the root is left alone.
pub fn mask(root: &Root, p: &Path, null: &OwnedFd) -> Result<()> {
    let target = match root.resolve(p) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = fstat(target.as_fd()).ctx("stat")?;
    let mnt = if file_type(st.st_mode) == SFlag::S_IFDIR {
        let fs = FsContext::open("tmpfs")?;
        fs.set_string("source", "tmpfs")?;
        fs.set_flag("ro")?;
        fs.mount(attr::RDONLY).ctx("a read-only tmpfs over it")?
    } else {
        let mnt = mountapi::clone_fd(null.as_fd(), false, "host /dev/null")?;
        let ro = MountAttr {
            attr_set: attr::RDONLY | attr::NOSUID | attr::NOEXEC,
            ..Default::default()
        };
        mountapi::setattr(mnt.as_fd(), false, &ro)?;
        mnt
    };
    mountapi::move_mount(mnt.as_fd(), target.as_fd()).ctx("mask it")
}

/// Make a path read-only: a clone of the mount tree there, read-only (and nosuid, nodev,
/// noexec) at its top, attached over it. As with runc, mounts below keep their own flags.
pub fn readonly(root: &Root, p: &Path) -> Result<()> {
    let target = match root.resolve(p) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mnt = mountapi::clone_fd(target.as_fd(), true, &p.display().to_string())?;
    let ro = MountAttr {
        attr_set: attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
        ..Default::default()
    };
    mountapi::setattr(mnt.as_fd(), false, &ro).ctx("make it read-only")?;
    mountapi::move_mount(mnt.as_fd(), target.as_fd()).ctx("attach the read-only copy")
}
