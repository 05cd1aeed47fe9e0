//! The container init: what runs in the child of `clone3`, from birth to `execve`.
//!
//! It never returns: on success it becomes the user program, on failure it sends
//! `Msg::Error` (or writes the error to `start`'s connection) and exits.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use super::attrs;
use super::namespaces::{self, Plan};
use super::program;
use super::sync::{Channel, Msg};
use super::sysctl;
use crate::err;
use crate::error::{Context, Result};
use crate::hooks;
use crate::procfs::ProcFs;
use crate::rootfs;
use crate::seccomp;

pub struct InitArgs<'a> {
    /// The container's id (a seccomp agent is told it).
    pub id: &'a str,
    pub spec: &'a oci_spec::runtime::Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub keyring: Option<&'a str>,
    /// Connected to --console-socket, when process.terminal is set.
    pub console_socket: Option<RawFd>,
    /// Idmapped mounts made before the clone (a container with a user namespace).
    pub idmapped: Option<&'a rootfs::idmap::Premade>,
    pub preserve_fds: u32,
    pub plan: &'a Plan,
    pub listener: &'a UnixListener,
    /// Make a new cgroup namespace once in the container's cgroup (see `spawn`).
    pub new_cgroupns: bool,
    /// v1/hybrid: the parent makes the cgroup while this init builds the root filesystem;
    /// `Placed` comes later (see `SpawnArgs::make_cgroup`).
    pub placed_later: bool,
}

/// Entry point of the child. Never returns.
pub fn run(a: &InitArgs, ch: &Channel, parent_only: &[RawFd]) -> ! {
    // Until execve, nothing in the container may open this process's /proc files, above
    // all /proc/<pid>/exe, the berth binary on the host (CVE-2019-5736). execve of the
    // user program makes it dumpable again.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    for fd in parent_only {
        // SAFETY: these fds belong to the parent's bookkeeping (its end of the sync pair,
        // the state-dir lock); the child's copies are closed and never used again.
        unsafe { libc::close(*fd) };
    }
    let err = match setup(a, ch) {
        Ok(prog) => {
            if ch.send(&Msg::Ready).is_err() {
                exit(1);
            }
            // The channel is close-on-exec and closed for good before execve.
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

/// A set-up init: its program, and the state JSON for startContainer hooks when there are
/// hooks.
struct Ready {
    prog: program::Program,
    hook_state: Option<String>,
}

/// Set the container up; the program to exec, or `None` when config.json has no
/// `process` (the spec allows that for create; start then fails).
fn setup(a: &InitArgs, ch: &Channel) -> Result<Option<Ready>> {
    let spec = a.spec;
    // Nothing before this (v2): the parent is putting this process into its cgroup.
    if !a.placed_later {
        ch.expect(Msg::Placed)?;
    }
    // v1/hybrid: in the container's cgroup (and then in a cgroup namespace of its own,
    // rooted there) before the first step that depends on it: a cgroup mount, a hook, the
    // end of the root filesystem's set-up.
    let placed = std::cell::Cell::new(!a.placed_later);
    let be_placed = || -> Result<()> {
        if placed.get() {
            return Ok(());
        }
        ch.expect(Msg::Placed)?;
        placed.set(true);
        if a.new_cgroupns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .ctx("config.json linux.namespaces (cgroup): unshare")?;
        }
        Ok(())
    };
    let new_user = a.plan.new.contains(CloneFlags::CLONE_NEWUSER);
    if new_user {
        ch.expect(Msg::Mapped)?;
    }
    // In a user namespace, act as its root: files made for the container (mount points,
    // devices) then belong to a mapped id, where the host's root would be unmapped.
    if new_user || a.plan.user_join.is_some() {
        let which = if new_user {
            "linux.gidMappings"
        } else {
            "the joined user namespace"
        };
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).with_ctx(|| {
            format!("become gid 0 in the user namespace (is gid 0 mapped in {which}?)")
        })?;
        let which = if new_user {
            "linux.uidMappings"
        } else {
            "the joined user namespace"
        };
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).with_ctx(|| {
            format!("become uid 0 in the user namespace (is uid 0 mapped in {which}?)")
        })?;
    }
    namespaces::join_all(&a.plan.init_joins)?;
    if a.new_cgroupns && !a.placed_later {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .ctx("config.json linux.namespaces (cgroup): unshare")?;
    }

    if needs_proc(spec) {
        let proc = ProcFs::host()?;
        if let Some(s) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
            sysctl::apply(s, &proc)?;
        }
        if let Some(p) = spec.process() {
            attrs::set_lsm_labels(p, &proc)?;
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

    // Compiled before pivot_root: with SCMP_ACT_NOTIFY it connects to the seccomp agent at
    // linux.seccomp.listenerPath, a host path. Loaded last, in `last_steps`.
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(
            profile,
            &seccomp::Container {
                spec,
                id: a.id,
                bundle: a.bundle,
            },
        )?),
        None => None,
    };

    let hook_list = spec.hooks().as_ref();
    let mut hook_state: Option<String> = None;
    let mut before_pivot = || -> Result<()> {
        be_placed()?;
        if !hooks::any_before_start(hook_list) {
            return Ok(());
        }
        ch.send(&Msg::Hooks)?;
        match ch.recv()? {
            Some(Msg::HooksDone) => {
                // The host pid, from the host's /proc: still reachable before pivot_root.
                let pid: i32 = std::fs::read_link("/proc/self")
                    .ok()
                    .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| err!("read the init's host pid from /proc/self"))?;
                let state = hooks::state_json(spec, a.id, "created", pid, a.bundle);
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
        placed: &be_placed,
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        no_pivot: a.no_pivot,
        userns: a.plan.has(CloneFlags::CLONE_NEWUSER),
        mount_ns: a.plan.has(CloneFlags::CLONE_NEWNS),
        idmapped: a.idmapped,
    })?;
    if let Some(c) = console {
        program::take_terminal(c, a.console_socket)?;
    }

    let Some(process) = spec.process().as_ref() else {
        return Ok(None);
    };
    let prog = program::prepare(spec, process, filter)?;
    Ok(Some(Ready { prog, hook_state }))
}

fn needs_proc(spec: &oci_spec::runtime::Spec) -> bool {
    let p = spec.process().as_ref();
    let set = |v: Option<&String>| v.is_some_and(|s| !s.is_empty());
    spec.linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .is_some_and(|s| !s.is_empty())
        || p.and_then(|p| p.oom_score_adj()).is_some()
        || set(p.and_then(|p| p.apparmor_profile().as_ref()))
        || set(p.and_then(|p| p.selinux_label().as_ref()))
}

/// A session keyring of the container's own, so it does not share the caller's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = program::cstr("keyring name", format!("_ses.{id}").as_bytes())?;
    // SAFETY: keyctl reads one NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match nix::errno::Errno::result(r) {
        // Kernels without keyrings: nothing to share, nothing to do.
        Ok(_) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).ctx("join a new session keyring (--no-new-keyring skips this)"),
    }
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
];

fn wait_and_exec(a: &InitArgs, ready: Option<Ready>) -> ! {
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
        let e = match &ready {
            Some(r) => match start_hooks(a, r) {
                Ok(()) => {
                    // `start` takes "X" then end of file as "exec'd"; end of file alone
                    // means this process died first.
                    let _ = conn.write_all(b"X");
                    program::exec(&r.prog, a.preserve_fds, Some(conn.as_raw_fd()))
                }
                Err(e) => e,
            },
            None => err!("config.json process: not set, so there is nothing to start"),
        };
        let _ = conn.write_all(e.to_string().as_bytes());
        exit(127);
    }
}

/// startContainer hooks: in the container, after `start`, before the user program.
fn start_hooks(a: &InitArgs, r: &Ready) -> Result<()> {
    match &r.hook_state {
        Some(state) => hooks::run(
            a.spec.hooks().as_ref(),
            hooks::Kind::StartContainer,
            &hooks::with_status(state, "created"),
        ),
        None => Ok(()),
    }
}
