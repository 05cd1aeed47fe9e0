//! The container init: what runs in the child of `clone3`, from birth to `execve`.
//!
//! It never returns: on success it becomes the user program, on failure it sends
//! `Msg::Error` (or writes the error to `start`'s connection) and exits.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::{Gid, Uid, chdir, setresgid, setresuid};

use super::identity;
use super::namespaces::{self, Plan};
use super::sync::{Channel, Msg};
use super::sysctl;
use crate::err;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::procfs::ProcFs;
use crate::rootfs;
use crate::seccomp;

pub struct InitArgs<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub keyring: Option<&'a str>,
    /// Connected to --console-socket, when process.terminal is set.
    pub console_socket: Option<RawFd>,
    pub preserve_fds: u32,
    pub plan: &'a Plan,
    pub listener: &'a UnixListener,
}

/// Entry point of the child. Never returns.
pub fn run(a: &InitArgs, ch: Channel, parent_only: &[RawFd]) -> ! {
    for fd in parent_only {
        // SAFETY: these fds belong to the parent's bookkeeping (its end of the sync pair,
        // the state-dir lock); the child's copies are closed and never used again.
        unsafe { libc::close(*fd) };
    }
    let err = match setup(a, &ch) {
        Ok(prog) => {
            if ch.send(&Msg::Ready).is_err() {
                exit(1);
            }
            drop(ch);
            wait_and_exec(a, prog)
        }
        Err(e) => e,
    };
    let _ = ch.send(&Msg::Error(err.to_string()));
    exit(1)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the child without running the parent's destructors or atexit
    // handlers, which belong to the parent's copy of this address space.
    unsafe { libc::_exit(code) }
}

/// The program to exec, with its argv and envp.
struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The capability sets to take last; `None` keeps the init's own.
    caps: Option<identity::CapSets>,
    no_new_privileges: bool,
    seccomp: Option<seccomp::Filter>,
    /// The state JSON for startContainer hooks, when there are hooks.
    hook_state: Option<String>,
}

/// Set the container up; the program to exec, or `None` when config.json has no
/// `process` (the spec allows that for create; start then fails).
fn setup(a: &InitArgs, ch: &Channel) -> Result<Option<Program>> {
    let spec = a.spec;
    if a.plan.new.contains(CloneFlags::CLONE_NEWUSER) {
        ch.expect(Msg::Mapped)?;
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx(
            "become gid 0 in the new user namespace (is gid 0 mapped in linux.gidMappings?)",
        )?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx(
            "become uid 0 in the new user namespace (is uid 0 mapped in linux.uidMappings?)",
        )?;
    }
    namespaces::join_all(&a.plan.init_joins)?;

    if needs_proc(spec) {
        let proc = ProcFs::host()?;
        if let Some(s) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
            sysctl::apply(s, &proc)?;
        }
        if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            proc.write("self/oom_score_adj", adj.to_string().as_bytes())
                .map_err(|e| {
                    let hint = if adj < 0 {
                        " (lowering it needs CAP_SYS_RESOURCE)"
                    } else {
                        ""
                    };
                    e.context(format!("config.json process.oomScoreAdj: set {adj}{hint}"))
                })?;
        }
    }

    // The init leads a session of its own, so a terminal can become its controlling one.
    nix::unistd::setsid().ctx("setsid")?;

    if let Some(id) = a.keyring {
        join_session_keyring(id)?;
    }

    if let Some(h) = spec.hostname() {
        if !a.plan.has(CloneFlags::CLONE_NEWUTS) {
            return Err(err!(
                "config.json hostname: set without a uts namespace in linux.namespaces"
            ));
        }
        nix::unistd::sethostname(h)
            .with_ctx(|| format!("config.json hostname: sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname() {
        if !a.plan.has(CloneFlags::CLONE_NEWUTS) {
            return Err(err!(
                "config.json domainname: set without a uts namespace in linux.namespaces"
            ));
        }
        // SAFETY: the pointer and length describe `d`'s bytes for the duration of the call.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(nix::errno::Errno::last()).ctx("config.json domainname: setdomainname");
        }
    }

    let hook_list = spec.hooks().as_ref();
    let mut hook_state: Option<String> = None;
    let mut before_pivot = || -> Result<()> {
        if !hooks::any_before_start(hook_list) {
            return Ok(());
        }
        ch.send(&Msg::Hooks)?;
        match ch.recv()? {
            Some(Msg::HooksDone(state)) => {
                hooks::run(hook_list, hooks::Kind::CreateContainer, &state)?;
                hook_state = Some(state);
                Ok(())
            }
            other => Err(err!("sync: expected HooksDone, got {other:?}")),
        }
    };
    let terminal = spec
        .process()
        .as_ref()
        .filter(|p| p.terminal() == Some(true))
        .map(|p| {
            p.console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16))
        });
    let console = rootfs::prepare(&mut rootfs::Setup {
        terminal,
        before_pivot: &mut before_pivot,
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        no_pivot: a.no_pivot,
        userns: a.plan.new.contains(CloneFlags::CLONE_NEWUSER),
        mount_ns: a.plan.has(CloneFlags::CLONE_NEWNS),
    })?;
    if let Some(c) = console {
        hand_over_terminal(c, a.console_socket)?;
    }

    let Some(process) = spec.process().as_ref() else {
        return Ok(None);
    };
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(err!(
            "config.json process.cwd: {} is not absolute",
            cwd.display()
        ));
    }
    chdir(cwd).with_ctx(|| format!("config.json process.cwd: chdir {}", cwd.display()))?;

    let args = process.args().as_deref().unwrap_or_default();
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let prog = program(args, &env)?;

    identity::set_rlimits(process)?;
    let caps = identity::become_user(process)?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(profile)?),
        None => None,
    };
    Ok(Some(Program {
        hook_state,
        caps,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp: filter,
        ..prog
    }))
}

/// Send the pty master to --console-socket (SCM_RIGHTS, with the pty's name as the
/// payload, as runc's recvtty reads it), then make the peer the init's controlling
/// terminal and its stdio.
fn hand_over_terminal(c: rootfs::console::Console, socket: Option<RawFd>) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::AsRawFd;
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
        // SAFETY: dup2 onto the standard fds, which the init owns.
        if unsafe { libc::dup2(c.peer.as_raw_fd(), target) } < 0 {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("dup2 the pty to fd {target}"));
        }
    }
    Ok(())
}

fn needs_proc(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .is_some_and(|s| !s.is_empty())
        || spec
            .process()
            .as_ref()
            .and_then(|p| p.oom_score_adj())
            .is_some()
}

/// A session keyring of the container's own, so it does not share the caller's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = cstr("keyring name", format!("_ses.{id}").as_bytes())?;
    // SAFETY: keyctl reads one NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match nix::errno::Errno::result(r) {
        // Kernels without keyrings: nothing to share, nothing to do.
        Ok(_) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).ctx("join a new session keyring (--no-new-keyring skips this)"),
    }
}

fn cstr(field: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| err!("{field}: contains a NUL byte"))
}

/// Resolve `args[0]` as execvp would, with the container's `PATH`, now that the root is
/// the container's. Errors are worded as runc's: engines map "executable file not found"
/// and "no such file or directory" to exit code 127, "permission denied" to 126.
fn program(args: &[String], env: &[String]) -> Result<Program> {
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
    Ok(Program {
        path: cstr("config.json process.args[0]", path.as_os_str().as_bytes())?,
        argv: args
            .iter()
            .enumerate()
            .map(|(i, s)| cstr(&format!("config.json process.args[{i}]"), s.as_bytes()))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .enumerate()
            .map(|(i, s)| cstr(&format!("config.json process.env[{i}]"), s.as_bytes()))
            .collect::<Result<_>>()?,
        caps: None,
        no_new_privileges: false,
        seccomp: None,
        hook_state: None,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

extern "C" fn die_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// Signals whose default action ends a process. While waiting for `start`, the init may be
/// pid 1 of its namespace, where the kernel drops such signals unless a handler is set: a
/// handler makes `kill` of a created container work. execve resets handlers to default.
const TERMINATING: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

fn wait_and_exec(a: &InitArgs, prog: Option<Program>) -> ! {
    let act = SigAction::new(
        SigHandler::Handler(die_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in TERMINATING {
        // SAFETY: the handler only calls _exit.
        let _ = unsafe { sigaction(*s, &act) };
    }
    loop {
        let mut conn = match a.listener.accept() {
            Ok((c, _)) => c,
            Err(_) => continue,
        };
        let mut go = [0u8; 1];
        if !matches!(conn.read(&mut go), Ok(1)) || go[0] != b'g' {
            continue;
        }
        let e = match &prog {
            Some(prog) => match start_hooks(a, prog) {
                Ok(()) => exec(a, prog),
                Err(e) => e,
            },
            None => err!("config.json process: not set, so there is nothing to start"),
        };
        let _ = conn.write_all(e.to_string().as_bytes());
        exit(127);
    }
}

/// startContainer hooks: in the container, after `start`, before the user program.
fn start_hooks(a: &InitArgs, prog: &Program) -> Result<()> {
    match &prog.hook_state {
        Some(state) => hooks::run(
            a.spec.hooks().as_ref(),
            hooks::Kind::StartContainer,
            &hooks::with_status(state, "created"),
        ),
        None => Ok(()),
    }
}

/// The last privileged steps; only execve follows. The seccomp filter is loaded while the
/// init may still load one: before the capability sets are reduced (CAP_SYS_ADMIN held)
/// without noNewPrivileges, after setting no_new_privs with it. Either way it is loaded
/// after every system call of berth's own that a profile may block.
fn last_steps(prog: &Program) -> Result<()> {
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

/// The last steps, then execve. Returns only on failure.
fn exec(a: &InitArgs, prog: &Program) -> Error {
    // Every fd but stdio and the --preserve-fds range is closed at exec; the connection
    // to `start` is among them, which tells `start` the exec happened.
    let first = 3 + a.preserve_fds;
    // SAFETY: close_range only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Error::from(nix::errno::Errno::last()).context("close_range");
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
