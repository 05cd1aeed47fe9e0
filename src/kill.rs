//! `berth kill`: send a signal to the container's init, or with `--all` to every process
//! of the container's cgroup, frozen while signalled so that no process forks past it.

use crate::cgroups;
use crate::cli::KillArgs;
use crate::container::{State, Status, Store, init_alive};
use crate::err;
use crate::error::{Context, Result};
use crate::process::{pidfd_open, pidfd_send_signal};
use crate::signal::parse_signal;

pub fn kill(store: &Store, a: &KillArgs) -> Result<()> {
    let sig = parse_signal(&a.signal)?;
    let c = store.peek(&a.id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {} is still being created", a.id))?;
    let status = c.status(Some(&st));
    if a.all {
        // As runc: --all also reaches what is left of a stopped container (containerd
        // sends `kill --all ID 9` to clean up after an init that exited).
        return match cgroups::of(&st)? {
            Some(cg) if cg.exists() => cg.signal_all(sig),
            Some(_) if status == Status::Stopped => Ok(()),
            _ if status == Status::Stopped => {
                Err(err!("cannot kill container {}: it is not running", a.id))
            }
            _ => signal_init(&st, sig),
        };
    }
    match status {
        Status::Created | Status::Running | Status::Paused => signal_init(&st, sig),
        _ => Err(err!("cannot kill container {}: it is not running", a.id)),
    }
}

/// Signal the init through a pidfd, after checking that the pid is still our init (same
/// start time): a pid recycled since cannot receive the signal.
pub fn signal_init(st: &State, sig: i32) -> Result<()> {
    let fd = pidfd_open(st.pid).with_ctx(|| format!("pidfd_open {}", st.pid))?;
    if !init_alive(st) {
        return Err(err!(
            "cannot signal container {}: its init has exited",
            st.id
        ));
    }
    pidfd_send_signal(&fd, sig).with_ctx(|| format!("signal {sig} to pid {}", st.pid))
}
