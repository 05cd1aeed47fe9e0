//! `exec`: a new process inside a running container.
//!
//! ```text
//!  berth exec (parent)                           joining process (child)
//!  ───────────────────                           ───────────────────────
//!  pidfd of the container's init
//!  setns(pidfd, pid|time): for children only
//!  clone3 ─────────────────────────────────────▶ non-dumpable; waits
//!  put the child in the container's cgroups
//!    ── Go ───────────────────────────────────▶ compile seccomp (agent: a host path)
//!                                                setns(pidfd, user|mnt|net|ipc|uts|cgroup)
//!                                                terminal, cwd, identity, …, execve
//!  ◀─────────── EOF (exec'd) or Error(text) ────
//! ```
//!
//! The joining process never shows the berth binary to the container: it is non-dumpable
//! from birth until execve, so no process in the container can open its /proc/<pid>/exe
//! (CVE-2019-5736).

use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use super::sync::{self, Msg};
use super::{Spawned, clone3, kill_and_reap, namespaces, program};
use crate::err;
use crate::error::{Context, Error, Result};
use crate::rootfs;
use crate::seccomp;

pub struct JoinArgs<'a> {
    /// The container's config.json, as created.
    pub spec: &'a Spec,
    /// The process to start.
    pub process: &'a Process,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub init_pidfd: &'a OwnedFd,
    pub console_socket: Option<RawFd>,
    pub preserve_fds: u32,
    /// Puts a pid into the container's cgroups.
    pub join_cgroup: &'a dyn Fn(Pid) -> Result<()>,
}

/// The namespaces of the container: every type config.json lists, made or joined.
fn container_namespaces(spec: &Spec) -> CloneFlags {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let mut flags = CloneFlags::empty();
    for ns in list {
        flags |= namespaces::flag_of(ns.typ());
    }
    flags
}

pub fn spawn(a: &JoinArgs) -> Result<Spawned> {
    let all = container_namespaces(a.spec);
    let for_children =
        all & (CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
    if !for_children.is_empty() {
        nix::sched::setns(a.init_pidfd, for_children)
            .ctx("join the container's pid and time namespaces")?;
    }
    let (parent, child) = sync::pair()?;
    let (pid, pidfd) = match clone3(CloneFlags::empty())? {
        Some(p) => p,
        None => {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            drop(parent);
            let e = match child
                .expect(Msg::Go)
                .and_then(|()| join(a, all - for_children))
            {
                Ok(prog) => program::exec(&prog, a.preserve_fds, Some(child.raw_fd())),
                Err(e) => e,
            };
            let _ = child.send(&Msg::Error(e.to_string()));
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(127) }
        }
    };
    drop(child);
    let handshake = || -> Result<()> {
        (a.join_cgroup)(pid)?;
        parent.send(&Msg::Go)?;
        match parent.recv()? {
            None => Ok(()),
            Some(Msg::Error(t)) => Err(Error::new(t)),
            Some(m) => Err(err!("sync: unexpected {m:?} from the joining process")),
        }
    };
    match handshake() {
        Ok(()) => Ok(Spawned {
            pid,
            pidfd,
            start_time: 0,
            cgroup: None,
        }),
        Err(e) => {
            kill_and_reap(pid, &pidfd);
            Err(e)
        }
    }
}

/// In the child: enter the container, then everything up to execve.
fn join(a: &JoinArgs, flags: CloneFlags) -> Result<program::Program> {
    // Compiled while host paths still resolve: a notify agent's socket is one.
    let filter = match a.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(
            profile,
            &seccomp::Container {
                spec: a.spec,
                id: a.id,
                bundle: a.bundle,
            },
        )?),
        None => None,
    };
    // LSM labels for the program, through the host's procfs while it is still ours.
    let labelled = |s: Option<&String>| s.is_some_and(|s| !s.is_empty());
    if labelled(a.process.apparmor_profile().as_ref())
        || labelled(a.process.selinux_label().as_ref())
    {
        super::attrs::set_lsm_labels(a.process, &crate::procfs::ProcFs::host()?)?;
    }
    if !flags.is_empty() {
        nix::sched::setns(a.init_pidfd, flags).ctx("join the container's namespaces")?;
    }
    nix::unistd::setsid().ctx("setsid")?;
    if a.process.terminal() == Some(true) {
        let root = rootfs::path::Root::open(Path::new("/"))?;
        let size = a
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let pty = rootfs::console::pty(&root, size).ctx("exec --tty")?;
        program::take_terminal(pty, a.console_socket)?;
    }
    program::prepare(a.spec, a.process, filter)
}
