//! The OOM watch of `events`: an eventfd registered on memory.oom_control (v1), or an
//! inotify watch of memory.events and its oom_kill count (v2).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::fs::write;
use crate::error::{Context, Result};

/// Something to poll for OOM events: an eventfd on v1 (memory.oom_control), an inotify
/// watch of memory.events on v2.
pub struct OomWatch {
    fd: OwnedFd,
    /// v1: the memory.oom_control the eventfd is registered for (kept open).
    _oom_control: Option<std::fs::File>,
    /// v2: memory.events and the oom_kill count last seen.
    events: Option<(PathBuf, u64)>,
}

fn oom_kills(events: &Path) -> u64 {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        .unwrap_or(0)
}

impl OomWatch {
    /// v1: an eventfd the kernel signals on each OOM of the cgroup at `dir`.
    pub fn v1(dir: &Path) -> Result<OomWatch> {
        // SAFETY: eventfd with flags only; the returned fd is ours.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(nix::errno::Errno::last()).ctx("eventfd");
        }
        // SAFETY: eventfd just returned this fd.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let oc = std::fs::File::open(dir.join("memory.oom_control"))
            .with_ctx(|| format!("open {}/memory.oom_control", dir.display()))?;
        let line = format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd());
        write(
            dir,
            "cgroup.event_control",
            &line,
            "events: register for OOM",
        )?;
        Ok(OomWatch {
            fd: efd,
            _oom_control: Some(oc),
            events: None,
        })
    }

    /// v2: memory.events, watched for changes of its oom_kill count.
    pub fn v2(events: &Path) -> Result<OomWatch> {
        // SAFETY: inotify_init1 with flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(nix::errno::Errno::last()).ctx("inotify_init1");
        }
        // SAFETY: the kernel just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let p = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|_| crate::err!("NUL in path"))?;
        // SAFETY: a NUL-terminated path that outlives the call, on our inotify fd.
        let w = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) };
        if w < 0 {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("inotify_add_watch {}", events.display()));
        }
        Ok(OomWatch {
            fd,
            _oom_control: None,
            events: Some((events.to_path_buf(), oom_kills(events))),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// After the fd polled readable: drain it; true when an OOM happened.
    pub fn fired(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let n = match self.fd.try_clone() {
            Ok(fd) => std::fs::File::from(fd).read(&mut buf).unwrap_or(0),
            Err(_) => 0,
        };
        match &mut self.events {
            None => n == 8,
            Some((path, last)) => {
                let now = oom_kills(path);
                let hit = now > *last;
                *last = now;
                hit
            }
        }
    }
}
