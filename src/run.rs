//! `berth run`: create, then start. In the foreground berth stays as the container's
//! parent: it forwards every signal it gets to the init, reaps, and exits with the init's
//! exit code (128+N when the init was killed by signal N), then deletes the container.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::container::Store;
use crate::create::{create_container, create_with_console};
use crate::delete::poststop;
use crate::error::{Context, Result};
use crate::process::{kill_and_reap, pidfd_send_signal};
use crate::start::{poststart, release};

/// Returns the exit code for berth.
pub fn run(store: &Store, a: &RunArgs) -> Result<i32> {
    if a.detach {
        let (c, st, _) = create_container(store, &a.create)?;
        if let Err(e) = release(&c) {
            remove_cgroup(&st);
            let _ = std::fs::remove_dir_all(&c.dir);
            return Err(e);
        }
        poststart(Some(&st));
        return Ok(0);
    }

    // Block every signal before the init exists, so none is lost: they are taken with
    // sigwait below. The init unblocks all signals before it execs.
    let all = SigSet::all();
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).ctx("block signals")?;
    // Orphans of the container (without a pid namespace) are reparented to us and reaped.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    // If config.json asks for a terminal and there is nobody to hand it to, berth keeps
    // the master and relays it: the init sends it on this pair.
    let (ours, theirs) = match a.create.console_socket {
        None => {
            let (o, t) =
                std::os::unix::net::UnixStream::pair().ctx("socketpair for the terminal")?;
            (Some(o), Some(t))
        }
        Some(_) => (None, None),
    };
    let (c, st, sp) = create_with_console(store, &a.create, theirs)?;
    let terminal = st
        .config
        .as_ref()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false);
    let ours = ours.filter(|_| terminal);
    let master = match ours.as_ref().map(crate::console::recv_master).transpose() {
        Ok(m) => m,
        Err(e) => {
            kill_and_reap(sp.pid, &sp.pidfd);
            remove_cgroup(&st);
            let _ = std::fs::remove_dir_all(&c.dir);
            return Err(e);
        }
    };
    if let Err(e) = release(&c) {
        kill_and_reap(sp.pid, &sp.pidfd);
        remove_cgroup(&st);
        let _ = std::fs::remove_dir_all(&c.dir);
        return Err(e);
    }
    poststart(Some(&st));
    let (dir, id) = (c.dir.clone(), c.id.clone());
    c.unlock();

    let code = match master {
        Some(m) => {
            let _raw = crate::console::Raw::stdin();
            crate::console::supervise(sp.pid, &sp.pidfd, &all, m)?
        }
        None => supervise(sp.pid, &sp.pidfd, &all),
    };
    if !a.keep {
        remove_cgroup(&st);
        poststop(&st);
        match store.open(&id) {
            Ok(c) => c.remove()?,
            Err(_) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}

/// Kill what is left in the container's cgroup and remove it, as `delete` does.
fn remove_cgroup(st: &crate::container::State) {
    if let Ok(Some(cg)) = crate::cgroups::of(st)
        && let Err(e) = cg.destroy()
    {
        log::warn!("{e}");
    }
}

/// Wait for `init`, forwarding every signal in `set` to it; its exit code (128+N when
/// killed by signal N).
pub fn supervise(init: Pid, pidfd: &std::os::fd::OwnedFd, set: &SigSet) -> i32 {
    loop {
        if let Some(code) = reap(init) {
            return code;
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = pidfd_send_signal(pidfd, sig as i32);
            }
            Err(_) => {}
        }
    }
}

/// Reap every exited child; the init's exit code once it is among them.
pub fn reap(init: Pid) -> Option<i32> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
