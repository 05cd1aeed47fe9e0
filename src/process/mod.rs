//! Making the container's init: clone3 into the new namespaces, then the set-up protocol
//! of [`sync`] until the init reports it is ready (or why it is not).

pub mod attrs;
pub mod identity;
pub mod init;
pub mod join;
pub mod namespaces;
pub mod program;
pub mod sync;
pub mod sysctl;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::container::proc_stat;
use crate::err;
use crate::error::{Context, Result};
use crate::hooks;
use sync::Msg;

pub struct SpawnArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    /// Join a new session keyring of this name (`None` with --no-new-keyring).
    pub keyring: Option<&'a str>,
    /// Connected to --console-socket.
    pub console_socket: Option<RawFd>,
    pub preserve_fds: u32,
    /// Where the init waits for `start`.
    pub listener: &'a UnixListener,
    /// The parent's own fds that the init must not keep (the state-dir lock).
    pub parent_only: Vec<RawFd>,
}

/// A live init, set up and waiting for `start`.
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// Field 22 of /proc/<pid>/stat.
    pub start_time: u64,
}

pub fn spawn(a: &SpawnArgs) -> Result<Spawned> {
    let plan = namespaces::plan(a.spec)?;
    if plan.new.contains(CloneFlags::CLONE_NEWUSER) && mappings(a.spec).0.is_empty() {
        return Err(err!(
            "config.json linux.uidMappings: a new user namespace needs uid and gid mappings"
        ));
    }
    if let Some(s) = a.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::check(s, &plan)?;
    }
    attrs::check(a.spec)?;
    let (parent, child) = sync::pair()?;
    // pid and time namespaces given by path apply to the children of the caller.
    namespaces::join_all(&plan.parent_joins)?;

    let mut parent_only = a.parent_only.clone();
    parent_only.push(parent.raw_fd());
    let (pid, pidfd) = match clone3(plan.new)? {
        Some(p) => p,
        None => {
            let args = init::InitArgs {
                id: a.id,
                spec: a.spec,
                rootfs: a.rootfs,
                bundle: a.bundle,
                no_pivot: a.no_pivot,
                keyring: a.keyring,
                console_socket: a.console_socket,
                preserve_fds: a.preserve_fds,
                plan: &plan,
                listener: a.listener,
            };
            init::run(&args, child, &parent_only)
        }
    };
    drop(child);

    let handshake = || -> Result<u64> {
        if plan.new.contains(CloneFlags::CLONE_NEWUSER) {
            write_mappings(pid, a.spec)?;
            parent.send(&Msg::Mapped)?;
        }
        loop {
            match parent.recv()? {
                Some(Msg::Ready) => break,
                Some(Msg::Hooks) => {
                    let state = hooks::state_json(a.spec, a.id, "created", pid.as_raw(), a.bundle);
                    let list = a.spec.hooks().as_ref();
                    hooks::run(list, hooks::Kind::Prestart, &state)?;
                    hooks::run(list, hooks::Kind::CreateRuntime, &state)?;
                    parent.send(&Msg::HooksDone(state))?;
                }
                Some(Msg::Error(t)) => return Err(crate::error::Error::new(t)),
                Some(m) => return Err(err!("sync: unexpected {m:?} from the init")),
                None => return Err(err!("sync: the container init exited during set-up")),
            }
        }
        Ok(proc_stat(pid.as_raw())?.start_time)
    };
    match handshake() {
        Ok(start_time) => Ok(Spawned {
            pid,
            pidfd,
            start_time,
        }),
        Err(e) => {
            kill_and_reap(pid, &pidfd);
            Err(e)
        }
    }
}

/// Kill a child of ours and reap it, leaving no zombie.
pub fn kill_and_reap(pid: Pid, pidfd: &OwnedFd) {
    let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: a signal number and a null siginfo, on a pidfd we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd we then own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    nix::errno::Errno::result(r).map(|fd| {
        // SAFETY: the kernel just returned this fd to us.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// The kernel's `struct clone_args`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// fork-like clone3 into `flags`' new namespaces: `Some((pid, pidfd))` in the parent,
/// `None` in the child.
pub(crate) fn clone3(flags: CloneFlags) -> Result<Option<(Pid, OwnedFd)>> {
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags.bits() as u64 | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: with no stack given, clone3 behaves as fork: the child continues on a copy of
    // this stack. berth is single-threaded here, so no lock is held by another thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => {
            let e = nix::errno::Errno::last();
            Err(e).with_ctx(|| format!("clone3 with namespaces {}", describe(flags)))
        }
        0 => Ok(None),
        pid => {
            // SAFETY: CLONE_PIDFD stored a new fd for the child in `pidfd`.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Some((Pid::from_raw(pid as i32), fd)))
        }
    }
}

fn describe(flags: CloneFlags) -> String {
    let names: Vec<&str> = namespaces::KINDS
        .iter()
        .filter(|(_, f)| flags.contains(*f))
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(",")
    }
}

fn mappings(spec: &Spec) -> (&[LinuxIdMapping], &[LinuxIdMapping]) {
    let l = spec.linux().as_ref();
    (
        l.and_then(|l| l.uid_mappings().as_deref())
            .unwrap_or_default(),
        l.and_then(|l| l.gid_mappings().as_deref())
            .unwrap_or_default(),
    )
}

fn write_mappings(pid: Pid, spec: &Spec) -> Result<()> {
    let (uids, gids) = mappings(spec);
    let proc = crate::procfs::ProcFs::host()?;
    for (field, file, list) in [
        ("uidMappings", "uid_map", uids),
        ("gidMappings", "gid_map", gids),
    ] {
        let text: String = list
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        proc.write(&format!("{pid}/{file}"), text.as_bytes())
            .with_ctx(|| format!("config.json linux.{field}"))?;
    }
    Ok(())
}
