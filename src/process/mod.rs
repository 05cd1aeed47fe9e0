//! Making the container's init: clone3 into the new namespaces, then the set-up protocol
//! of [`sync`] until the init reports it is ready (or why it is not).

pub mod attrs;
pub mod identity;
pub mod init;
pub mod join;
pub mod namespaces;
pub mod netdev;
pub mod program;
pub mod sync;
pub mod sysctl;

use std::convert::Infallible;
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
    /// Makes the container's cgroup and applies its limits (`None`: no cgroup of its own).
    /// On cgroup v2, and when an intermediate clones the init, it is called before the
    /// clone (v2: the init is cloned into it). On v1 and hybrid hosts it is called just
    /// after the clone: the parent makes the directories in each hierarchy while the init
    /// builds the root filesystem, then writes the init's pid and sends `Placed`; the init
    /// waits for that before its cgroup namespace, its first cgroup mount and any hook.
    pub make_cgroup: &'a dyn Fn() -> Result<Option<crate::cgroups::Cgroup>>,
}

/// A live init, set up and waiting for `start`.
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// Field 22 of /proc/<pid>/stat.
    pub start_time: u64,
    /// The container's cgroup, the init in it.
    pub cgroup: Option<crate::cgroups::Cgroup>,
}

pub fn spawn(a: &SpawnArgs) -> Result<Spawned> {
    let mut plan = namespaces::plan(a.spec)?;
    // A new cgroup namespace is rooted where its maker is: the init makes it (unshare)
    // once it is in the container's cgroup, not clone3 before the parent has placed it.
    let new_cgroupns = plan.new.contains(CloneFlags::CLONE_NEWCGROUP);
    plan.new.remove(CloneFlags::CLONE_NEWCGROUP);
    if plan.new.contains(CloneFlags::CLONE_NEWUSER) && mappings(a.spec).0.is_empty() {
        return Err(err!(
            "config.json linux.uidMappings: a new user namespace needs uid and gid mappings"
        ));
    }
    if let Some(s) = a.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::check(s, &plan)?;
    }
    attrs::check(a.spec)?;
    netdev::check(a.spec, &plan)?;
    let (parent, child) = sync::pair()?;
    let mut parent_only = a.parent_only.clone();
    parent_only.push(parent.raw_fd());
    // v1 and hybrid: the cgroup is made while the init works (see SpawnArgs::make_cgroup).
    let later =
        plan.user_join.is_none() && matches!(crate::cgroups::mode()?, crate::cgroups::Mode::V1(_));
    let early = match later {
        true => None,
        false => (a.make_cgroup)()?,
    };
    let undo_early = |e: crate::error::Error| {
        if let Some(cg) = &early
            && let Err(d) = cg.destroy()
        {
            log::warn!("{d}");
        }
        e
    };
    let cgroup_fd = match &early {
        Some(cg) if plan.user_join.is_none() => cg.clone_fd().map_err(undo_early)?,
        _ => None,
    };
    parent_only.extend(cgroup_fd.as_ref().map(|f| f.as_raw_fd()));
    // Only the host's user namespace can idmap a mount: with a user namespace of the
    // container's own, those trees are made now and attached by the init.
    let idmapped = match plan.has(CloneFlags::CLONE_NEWUSER) {
        true => Some(crate::rootfs::idmap::premake(a.spec, a.bundle).map_err(undo_early)?),
        false => None,
    };
    let become_init = || -> Infallible {
        let args = init::InitArgs {
            id: a.id,
            spec: a.spec,
            rootfs: a.rootfs,
            bundle: a.bundle,
            no_pivot: a.no_pivot,
            keyring: a.keyring,
            console_socket: a.console_socket,
            idmapped: idmapped.as_ref(),
            preserve_fds: a.preserve_fds,
            plan: &plan,
            listener: a.listener,
            new_cgroupns,
            placed_later: later,
        };
        init::run(&args, &child, &parent_only)
    };
    let cloned = match &plan.user_join {
        Some(user) => via_user_namespace(user, &plan, a.spec, &become_init),
        None => {
            // pid and time namespaces given by path apply to the children of the caller.
            namespaces::join_all(&plan.parent_joins).and_then(|()| {
                match clone3_into(time_namespace(a.spec, plan.new)?, cgroup_fd.as_ref())? {
                    Some(p) => Ok(p),
                    // The init never returns from become_init.
                    #[allow(unreachable_code)]
                    None => match become_init() {},
                }
            })
        }
    };
    let (pid, pidfd) = cloned.map_err(undo_early)?;
    drop(child);

    let new_user = plan.new.contains(CloneFlags::CLONE_NEWUSER);
    let hooks_ran = std::cell::Cell::new(false);
    let cgroup = std::cell::RefCell::new(early);
    let handshake = || -> Result<u64> {
        if later {
            // The init goes on with its namespaces and mounts meanwhile.
            if new_user {
                write_mappings(pid, a.spec)?;
                parent.send(&Msg::Mapped)?;
            }
            *cgroup.borrow_mut() = (a.make_cgroup)()?;
        }
        if let Some(cg) = cgroup.borrow().as_ref()
            && cgroup_fd.is_none()
        {
            cg.add_pid(pid.as_raw())?;
        }
        parent.send(&Msg::Placed)?;
        if new_user && !later {
            write_mappings(pid, a.spec)?;
            parent.send(&Msg::Mapped)?;
        }
        loop {
            match parent.recv()? {
                Some(Msg::Ready) => {
                    // Set up and waiting: nothing of the container runs yet.
                    netdev::move_in(a.spec, pid)?;
                    break;
                }
                Some(Msg::Hooks) => {
                    hooks_ran.set(true);
                    let state = hooks::state_json(a.spec, a.id, "created", pid.as_raw(), a.bundle);
                    let list = a.spec.hooks().as_ref();
                    hooks::run(list, hooks::Kind::Prestart, &state)?;
                    hooks::run(list, hooks::Kind::CreateRuntime, &state)?;
                    parent.send(&Msg::HooksDone)?;
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
            cgroup: cgroup.into_inner(),
        }),
        Err(e) => {
            kill_and_reap(pid, &pidfd);
            // An init that failed on its own while its cgroup was being made left its
            // reason on the channel: that is the error to report, not ESRCH or EPIPE.
            let e = match parent.recv() {
                Ok(Some(Msg::Error(t))) => crate::error::Error::new(t),
                _ => e,
            };
            if let Some(cg) = cgroup.into_inner()
                && let Err(d) = cg.destroy()
            {
                log::warn!("{d}");
            }
            // A failed prestart, createRuntime or createContainer hook stops the container
            // and goes on with the lifecycle's end: poststop hooks run (runtime-spec
            // lifecycle steps 12 and 13).
            if hooks_ran.get() {
                let state = hooks::state_json(a.spec, a.id, "stopped", pid.as_raw(), a.bundle);
                hooks::run_warn(a.spec.hooks().as_ref(), hooks::Kind::Poststop, &state);
            }
            Err(e)
        }
    }
}

/// Join the user namespace given by path, then make the init inside it, so the
/// namespaces made new are owned by it: a short-lived intermediate process joins it (the
/// parent must keep its host privileges), joins the pid and time namespaces given by path,
/// and clones the init with CLONE_PARENT, so the init is still our child. The
/// intermediate reports the init's pid on a pipe and exits.
fn via_user_namespace(
    user: &namespaces::Join,
    plan: &namespaces::Plan,
    spec: &Spec,
    become_init: &dyn Fn() -> Infallible,
) -> Result<(Pid, OwnedFd)> {
    use std::io::{Read, Write};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
    let w_raw = w.as_raw_fd();
    let Some((mid, _mid_fd)) = clone3(CloneFlags::empty())? else {
        drop(r);
        let made = (|| -> Result<i32> {
            nix::sched::setns(&user.fd, CloneFlags::CLONE_NEWUSER).with_ctx(|| {
                format!(
                    "config.json linux.namespaces (user): join {}",
                    user.path.display()
                )
            })?;
            namespaces::join_all(&plan.parent_joins)?;
            let flags = time_namespace(spec, plan.new)? | CloneFlags::CLONE_PARENT;
            match clone3(flags)? {
                Some((pid, _)) => Ok(pid.as_raw()),
                None => {
                    // The pipe is the intermediate's to report on: its end of EOF.
                    let _ = nix::unistd::close(w_raw);
                    #[allow(unreachable_code)]
                    match become_init() {}
                }
            }
        })();
        let msg = match made {
            Ok(pid) => format!("{pid}"),
            Err(e) => format!("!{e}"),
        };
        let _ = std::fs::File::from(w).write_all(msg.as_bytes());
        // SAFETY: _exit ends the intermediate without running the parent's destructors.
        unsafe { libc::_exit(0) }
    };
    drop(w);
    let mut msg = String::new();
    let read = std::fs::File::from(r).read_to_string(&mut msg);
    let _ = nix::sys::wait::waitpid(mid, None);
    read.ctx("read the init's pid from the intermediate process")?;
    if let Some(e) = msg.strip_prefix('!') {
        return Err(crate::error::Error::new(e));
    }
    let pid: i32 = msg
        .parse()
        .map_err(|_| err!("intermediate process: no pid reported ({msg:?})"))?;
    let fd = pidfd_open(pid).ctx("pidfd_open the init")?;
    Ok((Pid::from_raw(pid), fd))
}

/// linux.timeOffsets must be written before any process enters the new time namespace,
/// and clone3 would put the init in at once: so with offsets the parent makes the time
/// namespace for its children (unshare), writes them, and the init is born in it. The
/// flags clone3 is left to do are returned.
fn time_namespace(spec: &Spec, flags: CloneFlags) -> Result<CloneFlags> {
    let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref());
    let Some(offsets) = offsets.filter(|o| !o.is_empty()) else {
        return Ok(flags);
    };
    if !flags.contains(time) {
        return Err(err!(
            "config.json linux.timeOffsets: set without a new time namespace in linux.namespaces"
        ));
    }
    let mut text = String::new();
    for (clock, off) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(err!(
                "config.json linux.timeOffsets[{clock:?}]: only monotonic and boottime clocks have offsets"
            ));
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    nix::sched::unshare(time).ctx("config.json linux.namespaces (time): unshare")?;
    crate::procfs::ProcFs::host()?
        .write("self/timens_offsets", text.as_bytes())
        .ctx("config.json linux.timeOffsets")?;
    Ok(flags - time)
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
    clone3_into(flags, None)
}

/// clone3, and with `cgroup` (a v2 cgroup directory) born in that cgroup
/// (CLONE_INTO_CGROUP, Linux 5.7).
fn clone3_into(flags: CloneFlags, cgroup: Option<&OwnedFd>) -> Result<Option<(Pid, OwnedFd)>> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags.bits() as u64
            | libc::CLONE_PIDFD as u64
            | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut RawFd as u64,
        cgroup: cgroup.map_or(0, |f| f.as_raw_fd() as u64),
        // With CLONE_PARENT the kernel takes the caller's own exit signal, and wants 0 here.
        exit_signal: if flags.contains(CloneFlags::CLONE_PARENT) {
            0
        } else {
            libc::SIGCHLD as u64
        },
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
            let into = if cgroup.is_some() {
                " into the container's cgroup"
            } else {
                ""
            };
            Err(e).with_ctx(|| format!("clone3{into} with namespaces {}", describe(flags)))
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

/// Write the init's id maps: directly as root; through the setuid helpers newuidmap and
/// newgidmap (package uidmap), which check /etc/subuid and /etc/subgid, otherwise.
fn write_mappings(pid: Pid, spec: &Spec) -> Result<()> {
    let (uids, gids) = mappings(spec);
    let root = nix::unistd::geteuid().is_root();
    let proc = if root {
        Some(crate::procfs::ProcFs::host()?)
    } else {
        None
    };
    for (field, file, helper, list) in [
        ("uidMappings", "uid_map", "newuidmap", uids),
        ("gidMappings", "gid_map", "newgidmap", gids),
    ] {
        let field = format!("config.json linux.{field}");
        match &proc {
            Some(proc) => {
                let text: String = list
                    .iter()
                    .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                    .collect();
                proc.write(&format!("{pid}/{file}"), text.as_bytes())
                    .ctx(&field)?;
            }
            None => {
                let mut cmd = std::process::Command::new(helper);
                cmd.arg(pid.to_string());
                for m in list {
                    cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
                }
                let out = cmd.output().with_ctx(|| format!("{field}: run {helper}"))?;
                if !out.status.success() {
                    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    return Err(err!("{field}: {helper} {}: {why}", out.status));
                }
            }
        }
    }
    Ok(())
}
