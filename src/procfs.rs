//! Writes under `/proc`, only through a procfs that has been checked to be one.
//!
//! A container's config can mount something over `/proc/sys` or `/proc/self/attr`, and a
//! write by path would then land in the wrong file (CVE-2025-52881). Here the procfs root
//! is opened once and checked with fstatfs; every file is opened beneath it without
//! crossing a mount point or following a magic link, and checked again.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use crate::err;
use crate::error::{Context, Result};

pub struct ProcFs {
    root: OwnedFd,
}

fn check(fd: &impl AsFd, what: &str) -> Result<()> {
    let st = fstatfs(fd).with_ctx(|| format!("statfs {what}"))?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(err!(
            "{what} is not on a procfs (something is mounted over it)"
        ));
    }
    Ok(())
}

impl ProcFs {
    /// The runtime's own `/proc`.
    pub fn host() -> Result<ProcFs> {
        let root = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open /proc")?;
        check(&root, "/proc")?;
        Ok(ProcFs { root })
    }

    /// Write `data` to `/proc/<rel>` (e.g. `self/oom_score_adj`, `sys/net/ipv4/ip_forward`).
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<()> {
        let shown = format!("/proc/{rel}");
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = openat2(self.root.as_fd(), rel, how).with_ctx(|| format!("open {shown}"))?;
        check(&fd, &shown)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(data).with_ctx(|| format!("write {shown}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_to_procfs_and_escapes_are_refused() {
        let p = ProcFs::host().unwrap();
        // Writing our own current value back is allowed for any user.
        let cur = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        p.write("self/oom_score_adj", cur.trim().as_bytes())
            .unwrap();
        assert!(p.write("../etc/hostname", b"x").is_err());
        assert!(p.write("/etc/hostname", b"x").is_err());
        // A magic link out of procfs.
        assert!(p.write("self/cwd/x", b"x").is_err());
    }
}
