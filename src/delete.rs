//! `berth delete`: remove a stopped container. A created, running or paused one is refused
//! unless `--force`, which kills it first (the spec's MUST; runc and crun delete it anyway).
//! The container's cgroup goes too: whatever is left in it is killed (frozen, SIGKILL,
//! thawed) and waited for, then the directories `create` made are removed.

use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cgroups;
use crate::cli::DeleteArgs;
use crate::container::{State, Status, Store};
use crate::err;
use crate::error::{Context, Result};
use crate::hooks;
use crate::process::{pidfd_open, pidfd_send_signal};

pub fn delete(store: &Store, a: &DeleteArgs) -> Result<()> {
    let c = match store.open(&a.id) {
        Ok(c) => c,
        // containerd deletes with --force after a failed create: nothing left is success.
        Err(e) if a.force && e.to_string().ends_with("does not exist") => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = c.load()?;
    match (c.status(st.as_ref()), st.as_ref()) {
        // No state.json, and we hold the lock: a create that died half-way.
        (Status::Creating, _) | (Status::Stopped, _) => {}
        (s, Some(st)) => {
            if !a.force {
                return Err(err!(
                    "cannot delete container {} that is not stopped: {} (use --force to kill it first)",
                    a.id,
                    s.as_str()
                ));
            }
            let fd = pidfd_open(st.pid).with_ctx(|| format!("pidfd_open {}", st.pid))?;
            if crate::container::init_alive(st) {
                pidfd_send_signal(&fd, libc::SIGKILL)
                    .with_ctx(|| format!("kill pid {}", st.pid))?;
                // A paused init acts on SIGKILL only once thawed.
                if let Some(cg) = cgroups::of(st)? {
                    cg.signal_all(libc::SIGKILL)?;
                }
                wait_exit(&fd).with_ctx(|| format!("wait for pid {} to exit", st.pid))?;
            }
        }
        (_, None) => {}
    }
    if let Some(st) = &st {
        if let Some(cg) = cgroups::of(st)? {
            cg.destroy()
                .with_ctx(|| format!("delete container {}", a.id))?;
        }
        poststop(st);
    } else {
        // A create that died half-way: its cgroup (and an init waiting in it) may remain.
        let path = c.dir.join(crate::container::CGROUP_FILE);
        if let Ok(data) = std::fs::read(&path) {
            let rec: cgroups::Record =
                serde_json::from_slice(&data).with_ctx(|| format!("parse {}", path.display()))?;
            cgroups::Cgroup::load(&rec)?
                .destroy()
                .with_ctx(|| format!("delete container {}", a.id))?;
        }
    }
    c.remove()
}

/// Run the poststop hooks; their failures are warnings.
pub fn poststop(st: &State) {
    hooks::run_warn(
        st.hooks.as_ref(),
        hooks::Kind::Poststop,
        &st.hook_json(Status::Stopped),
    );
}

/// A pidfd turns readable when its process exits.
fn wait_exit(fd: &impl AsFd) -> Result<()> {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(10_000u16)) {
            Ok(0) => return Err(err!("still alive 10 s after SIGKILL")),
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("poll"),
        }
    }
}
