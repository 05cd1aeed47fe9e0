//! The eight namespaces: which are made new by `clone3`, which are joined by path, and
//! where each join happens.
//!
//! - New namespaces are clone3 flags, so the init is born inside them; a new user
//!   namespace is made first by the kernel and owns the others.
//! - pid and time namespaces apply to the *children* of the caller, so joining one by
//!   path (and making a new time namespace, whose offsets must be written before any
//!   process enters it) is done by the parent just before clone3.
//! - Every other namespace given by path is joined by the init with setns.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::err;
use crate::error::{Context, Result};

/// (config.json name, clone flag), in the order joins happen.
pub const KINDS: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("network", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mount", CloneFlags::CLONE_NEWNS),
];

fn kind_of(t: LinuxNamespaceType) -> (&'static str, CloneFlags) {
    let name = match t {
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Time => "time",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Mount => "mount",
    };
    *KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("every type is in KINDS")
}

/// The clone flag of a namespace type.
pub fn flag_of(t: LinuxNamespaceType) -> CloneFlags {
    kind_of(t).1
}

pub struct Join {
    pub name: &'static str,
    pub flag: CloneFlags,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

pub struct Plan {
    /// Namespaces made new by clone3.
    pub new: CloneFlags,
    /// Joined by the parent before clone3 (pid, time).
    pub parent_joins: Vec<Join>,
    /// Joined by the init (the others), in [`KINDS`] order.
    pub init_joins: Vec<Join>,
    /// A user namespace given by path: joined first, by a short-lived intermediate
    /// process, so every namespace made new is owned by it.
    pub user_join: Option<Join>,
}

impl Plan {
    pub fn has(&self, f: CloneFlags) -> bool {
        self.new.contains(f)
            || self.user_join.as_ref().is_some_and(|j| j.flag == f)
            || self
                .init_joins
                .iter()
                .chain(&self.parent_joins)
                .any(|j| j.flag == f)
    }
}

pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut p = Plan {
        new: CloneFlags::empty(),
        parent_joins: Vec::new(),
        init_joins: Vec::new(),
        user_join: None,
    };
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let mut seen = CloneFlags::empty();
    let mut joins = Vec::new();
    for (i, ns) in list.iter().enumerate() {
        let (name, flag) = kind_of(ns.typ());
        let field = format!("config.json linux.namespaces[{i}] ({name})");
        if seen.contains(flag) {
            return Err(err!("{field}: listed twice"));
        }
        seen |= flag;
        match ns.path() {
            None => p.new |= flag,
            Some(path) => {
                let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .with_ctx(|| format!("{field}: open {}", path.display()))?;
                check_type(&fd, flag).with_ctx(|| format!("{field}: {}", path.display()))?;
                joins.push(Join {
                    name,
                    flag,
                    path: path.clone(),
                    fd,
                });
            }
        }
    }
    joins.sort_by_key(|j| KINDS.iter().position(|(n, _)| *n == j.name));
    let to_parent = CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    for j in joins {
        if j.flag == CloneFlags::CLONE_NEWUSER {
            p.user_join = Some(j);
        } else if to_parent.contains(j.flag) {
            p.parent_joins.push(j);
        } else {
            p.init_joins.push(j);
        }
    }
    Ok(p)
}

/// The path must name a namespace of the entry's type (NS_GET_NSTYPE).
fn check_type(fd: &OwnedFd, want: CloneFlags) -> Result<()> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if got < 0 {
        return Err(nix::errno::Errno::last()).ctx("not a namespace file (NS_GET_NSTYPE)");
    }
    if got != want.bits() {
        let name = KINDS
            .iter()
            .find(|(_, f)| f.bits() == got)
            .map(|(n, _)| *n)
            .unwrap_or("unknown");
        return Err(err!("is a {name} namespace, not the type of this entry"));
    }
    Ok(())
}

/// Join each namespace in `joins` (setns).
pub fn join_all(joins: &[Join]) -> Result<()> {
    for j in joins {
        nix::sched::setns(&j.fd, j.flag).with_ctx(|| {
            format!(
                "config.json linux.namespaces ({}): join {}",
                j.name,
                j.path.display()
            )
        })?;
    }
    Ok(())
}

/// Names of the namespaces berth can make or join, for `features`.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|(n, _)| *n).collect()
}
