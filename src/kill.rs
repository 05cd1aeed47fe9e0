//! `berth kill`: send a signal to the container's init, or with `--all` to every process
//! of the container.

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
    match c.status(Some(&st)) {
        Status::Created | Status::Running => {}
        _ => return Err(err!("cannot kill container {}: it is not running", a.id)),
    }
    if a.all {
        for pid in same_pid_namespace(st.pid) {
            if pid != st.pid {
                // SAFETY: kill(2) with a pid read from /proc and a valid signal number.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
    signal_init(&st, sig)
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

/// Processes in the pid namespace of `pid`, when that namespace is not berth's own.
fn same_pid_namespace(pid: i32) -> Vec<i32> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(target) = ns(&pid.to_string()) else {
        return Vec::new();
    };
    if ns("self").as_ref() == Some(&target) {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| ns(n).as_ref() == Some(&target))
        .filter_map(|n| n.parse().ok())
        .collect()
}
