//! The user program: what the init (after `start`) and a process joining a running
//! container (`exec`) both do between "inside the container" and execve.
//!
//! [`prepare`] runs while berth's own system calls are still free: cwd, the executable's
//! path, scheduling attributes, rlimits, the user and bounding set, umask. [`exec`] runs
//! last: closes every fd that is not the program's, resets signals, then the privileged
//! steps in [`last_steps`] and execve.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use oci_spec::runtime::{Process, Spec};

use super::attrs;
use super::identity;
use crate::err;
use crate::error::{Context, Error, Result};
use crate::rootfs;
use crate::seccomp;

/// The program to exec and the last attributes to take.
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The capability sets to take last; `None` keeps the process's own.
    caps: Option<identity::CapSets>,
    no_new_privileges: bool,
    seccomp: Option<seccomp::Filter>,
    personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// execCPUAffinity.final.
    affinity: Option<String>,
}

/// Everything before the last steps, in the container's mount namespace and root.
pub fn prepare(spec: &Spec, process: &Process, filter: Option<seccomp::Filter>) -> Result<Program> {
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(err!(
            "config.json process.cwd: {} is not absolute",
            cwd.display()
        ));
    }
    enter_cwd(cwd)?;

    let args = process.args().as_deref().unwrap_or_default();
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let (path, argv, envp) = resolve(args, &env)?;

    if let Some(a) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
    {
        attrs::set_cpu_affinity(a, "config.json process.execCPUAffinity.initial")?;
    }
    if let Some(io) = process.io_priority() {
        attrs::set_io_priority(io.class(), io.priority())?;
    }
    if let Some(s) = process.scheduler() {
        attrs::set_scheduler(s)?;
    }
    if let Some(m) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        attrs::set_memory_policy(m)?;
    }
    identity::set_rlimits(process)?;
    let caps = identity::become_user(process)?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    Ok(Program {
        path,
        argv,
        envp,
        caps,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp: filter,
        personality: spec.linux().as_ref().and_then(|l| l.personality().clone()),
        affinity: process
            .exec_cpu_affinity()
            .as_ref()
            .and_then(|a| a.cpu_affinity_final().clone()),
    })
}

/// Change to process.cwd, resolved inside the container's root by fd: a cwd such as
/// `/proc/self/fd/7` must not reach a host directory through a leaked fd
/// (CVE-2024-21626). A missing directory is made, as runc does.
fn enter_cwd(cwd: &Path) -> Result<()> {
    let field = || format!("config.json process.cwd ({})", cwd.display());
    let root = rootfs::path::Root::open(Path::new("/")).with_ctx(field)?;
    let dir = root.mkdir_all(cwd, 0o755).with_ctx(field)?;
    nix::unistd::fchdir(&dir).with_ctx(|| format!("{}: chdir", field()))?;
    // The kernel marks a cwd outside this process's root "(unreachable)".
    let now = nix::unistd::getcwd().with_ctx(|| format!("{}: getcwd", field()))?;
    if !now.is_absolute() || now.starts_with("(unreachable)") {
        return Err(err!("{}: resolves outside the container's root", field()));
    }
    Ok(())
}

pub fn cstr(field: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| err!("{field}: contains a NUL byte"))
}

/// Resolve `args[0]` as execvp would, with the container's `PATH`, now that the root is
/// the container's. Errors are worded as runc's: engines map "executable file not found"
/// and "no such file or directory" to exit code 127, "permission denied" to 126.
fn resolve(args: &[String], env: &[String]) -> Result<(CString, Vec<CString>, Vec<CString>)> {
    let first = args
        .first()
        .ok_or_else(|| err!("config.json process.args: empty, nothing to run"))?;
    let path = if first.contains('/') {
        PathBuf::from(first)
    } else {
        let path_var = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path_var
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(first))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                err!("config.json process.args[0]: exec: {first:?}: executable file not found in $PATH")
            })?
    };
    match std::fs::metadata(&path) {
        Err(e) => {
            let reason = Error::from(e).to_string().to_lowercase();
            return Err(err!(
                "config.json process.args[0]: exec: {}: {reason}",
                path.display()
            ));
        }
        Ok(m) if m.is_dir() => {
            return Err(err!(
                "config.json process.args[0]: exec: {}: is a directory",
                path.display()
            ));
        }
        Ok(_) => {}
    }
    let argv = args
        .iter()
        .enumerate()
        .map(|(i, s)| cstr(&format!("config.json process.args[{i}]"), s.as_bytes()))
        .collect::<Result<_>>()?;
    let envp = env
        .iter()
        .enumerate()
        .map(|(i, s)| cstr(&format!("config.json process.env[{i}]"), s.as_bytes()))
        .collect::<Result<_>>()?;
    Ok((
        cstr("config.json process.args[0]", path.as_os_str().as_bytes())?,
        argv,
        envp,
    ))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Send the pty master to --console-socket (SCM_RIGHTS, with the pty's name as the
/// payload, as runc's recvtty reads it), then make the peer the controlling terminal and
/// the stdio of this process.
pub fn take_terminal(c: rootfs::console::Console, socket: Option<RawFd>) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let sock = socket.ok_or_else(|| err!("config.json process.terminal: no --console-socket"))?;
    let iov = [std::io::IoSlice::new(c.name.as_bytes())];
    let fds = [c.master.as_raw_fd()];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx("--console-socket: send the terminal")?;
    drop(c.master);
    // SAFETY: TIOCSCTTY with argument 0 on a pty peer we own.
    if unsafe { libc::ioctl(c.peer.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(nix::errno::Errno::last()).ctx("make the pty the controlling terminal");
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard fds, which this process owns.
        if unsafe { libc::dup2(c.peer.as_raw_fd(), target) } < 0 {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("dup2 the pty to fd {target}"));
        }
    }
    Ok(())
}

/// Close every fd from `first` on, for real, except those in `keep` (marked close-on-exec:
/// they close at execve, which tells the other end of `report` that the exec happened).
fn close_fds(first: u32, keep: &[Option<RawFd>]) -> Result<()> {
    let close_range = |lo: u32, hi: u32, flags: libc::c_uint| -> Result<()> {
        if lo > hi {
            return Ok(());
        }
        // SAFETY: close_range acts on fd numbers only; the fds in range are ours to close.
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, flags) };
        nix::errno::Errno::result(r).map(drop).ctx("close_range")
    };
    let mut kept: Vec<u32> = keep
        .iter()
        .flatten()
        .map(|k| *k as u32)
        .filter(|k| *k >= first)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut lo = first;
    for k in kept {
        close_range(lo, k - 1, 0)?;
        close_range(k, k, libc::CLOSE_RANGE_CLOEXEC)?;
        lo = k + 1;
    }
    close_range(lo, u32::MAX, 0)
}

/// The last privileged steps; only execve follows. The seccomp filter is loaded while the
/// process may still load one: before the capability sets are reduced (CAP_SYS_ADMIN held)
/// without noNewPrivileges, after setting no_new_privs with it. Either way it is loaded
/// after every system call of berth's own that a profile may block.
fn last_steps(prog: &Program) -> Result<()> {
    if let Some(p) = &prog.personality {
        attrs::set_personality(p)?;
    }
    if let Some(list) = &prog.affinity {
        attrs::set_cpu_affinity(list, "config.json process.execCPUAffinity.final")?;
    }
    let load = || prog.seccomp.as_ref().map_or(Ok(()), seccomp::load);
    if !prog.no_new_privileges {
        load()?;
    }
    if let Some(caps) = &prog.caps {
        identity::apply_caps(caps)?;
    }
    if prog.no_new_privileges {
        identity::no_new_privileges()?;
        load()?;
    }
    Ok(())
}

/// Close the fds that are not the program's (all but stdio and the `preserve` fds after
/// them; `report` stays open until execve), reset signals, take the last steps and execve.
/// Returns only on failure.
pub fn exec(prog: &Program, preserve: u32, report: Option<RawFd>) -> Error {
    // The seccomp agent's socket stays: the notify fd goes over it once the filter is loaded.
    let agent = prog.seccomp.as_ref().and_then(seccomp::Filter::agent_fd);
    if let Err(e) = close_fds(3 + preserve, &[report, agent]) {
        return e;
    }
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s != Signal::SIGKILL && s != Signal::SIGSTOP {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { sigaction(s, &dfl) };
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
    if let Err(e) = last_steps(prog) {
        return e;
    }
    let e = match nix::unistd::execve(&prog.path, &prog.argv, &prog.envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    // Lower case, as runc words it: engines match on "permission denied".
    err!(
        "config.json process.args[0]: exec {}: {}",
        String::from_utf8_lossy(prog.path.as_bytes()),
        e.desc().to_lowercase()
    )
}
