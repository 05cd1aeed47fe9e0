//! Reads of the runtime's own `/proc` during set-up, through a procfs checked to be one.
//!
//! The writes go through [`crate::procfs::ProcFs`]; this is the read side the rootfs
//! needs (its own mount table and cgroups, whether `/proc/kcore` exists, a helper
//! process's user namespace). Each file is opened beneath the checked `/proc` fd without
//! crossing a mount or following a magic link, and checked again, so a mount over a
//! `/proc` path cannot feed the set-up forged contents (CVE-2025-52881).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;
use nix::sys::statfs::{NSFS_MAGIC, PROC_SUPER_MAGIC, fstatfs};

use crate::err;
use crate::error::{Context, Result};

pub struct HostProc {
    root: OwnedFd,
}

fn beneath(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

fn on_procfs(fd: &impl AsFd, what: &str) -> Result<()> {
    let st = fstatfs(fd).with_ctx(|| format!("statfs {what}"))?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(err!(
            "{what} is not on a procfs (something is mounted over it)"
        ));
    }
    Ok(())
}

impl HostProc {
    pub fn open() -> Result<HostProc> {
        let root = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open /proc")?;
        on_procfs(&root, "/proc")?;
        Ok(HostProc { root })
    }

    fn open_file(&self, rel: &str, flags: OFlag) -> Result<OwnedFd> {
        let shown = format!("/proc/{rel}");
        let fd =
            openat2(self.root.as_fd(), rel, beneath(flags)).with_ctx(|| format!("open {shown}"))?;
        on_procfs(&fd, &shown)?;
        Ok(fd)
    }

    /// The text of `/proc/<rel>` (e.g. `self/mountinfo`).
    pub fn read(&self, rel: &str) -> Result<String> {
        let fd = self.open_file(rel, OFlag::O_RDONLY)?;
        let mut s = String::new();
        std::fs::File::from(fd)
            .read_to_string(&mut s)
            .with_ctx(|| format!("read /proc/{rel}"))?;
        Ok(s)
    }

    /// Whether `/proc/<rel>` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.open_file(rel, OFlag::O_PATH).is_ok()
    }

    /// The pid, as this procfs numbers it, of the process a pidfd of ours refers to (the
    /// `Pid:` line of the pidfd's fdinfo). A child made in a new pid namespace has another
    /// number there than here.
    pub fn pid_of(&self, pidfd: &OwnedFd) -> Result<i32> {
        let text = self.read(&format!("self/fdinfo/{}", pidfd.as_raw_fd()))?;
        text.lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse().ok())
            .filter(|p: &i32| *p > 0)
            .ok_or_else(|| err!("no Pid in the fdinfo of a pidfd"))
    }

    /// `/proc/<pid>/ns/user`, checked to be a user namespace.
    pub fn user_namespace(&self, pid: i32) -> Result<OwnedFd> {
        let shown = format!("/proc/{pid}/ns/user");
        let dir = self.open_file(&format!("{pid}/ns"), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        // The one magic link followed: the namespace file of a process of ours.
        let fd = openat(
            dir.as_fd(),
            "user",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {shown}"))?;
        let st = fstatfs(&fd).with_ctx(|| format!("statfs {shown}"))?;
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
        // SAFETY: NS_GET_NSTYPE takes no argument and returns the namespace's type.
        let t = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        if st.filesystem_type() != NSFS_MAGIC || t != libc::CLONE_NEWUSER {
            return Err(err!("{shown} is not a user namespace"));
        }
        Ok(fd)
    }
}
