//! From config.json's `linux.seccomp` to rules per architecture and system call number:
//! everything the filter decides, checked and resolved, before any BPF is written.
//!
//! Semantics, where the spec leaves a choice (each one runc's unless said otherwise):
//! - A name unknown to berth's tables is skipped with a debug line; a name known on some
//!   architectures only (`socketcall` on x86, `arch_prctl` on x86_64) applies where known.
//! - The args of one rule are ANDed. As runc does, a rule that names the same argument index
//!   twice is split into one rule per arg, ORed (libseccomp cannot AND two conditions on one
//!   argument, and profiles written for runc expect this).
//! - When several rules match one call, the most restrictive action wins, whatever their
//!   order in the profile: the kernel's own precedence between filters (KILL_PROCESS,
//!   KILL_THREAD, TRAP, ERRNO, NOTIFY, TRACE, LOG, ALLOW). A later ALLOW can't undo a block.
//! - System calls newer than the profile get ENOSYS: see [`enosys`].
//! - An architecture the profile does not list: see [`unlisted_action`].
//!
//! Not done: libseccomp also applies a rule on an x86 socket or SysV IPC call (`socket`,
//! `shmget`, …) to the multiplexers `socketcall` and `ipc` (their first argument naming
//! the call). berth filters those multiplexers only by the rules that name them, so a
//! profile that lists SCMP_ARCH_X86, blocks `socket` and allows `socketcall` lets an
//! i386 program reach socket(2) through socketcall(2).

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Operator,
};

use super::arch::{ALL, Arch};
use crate::err;
use crate::error::Result;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION: u32 = 0xffff_0000;

pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

const ENOSYS: u32 = libc::ENOSYS as u32;
/// The kernel caps an errno at MAX_ERRNO.
const MAX_ERRNO: u32 = 4095;
/// Linux system calls take at most six arguments.
const MAX_ARGS: usize = 6;

/// A comparison of one 64-bit argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgCond {
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`: the profile's `value` is the mask, `valueTwo` the value.
    MaskedEq(u64),
}

/// All conditions must hold for `action` to be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conds: Vec<ArgCond>,
    pub action: u32,
}

/// What one system call number gets: a fixed action, or the first matching rule (most
/// restrictive first), else `fallback`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    Ret(u32),
    Rules { rules: Vec<Rule>, fallback: u32 },
}

/// The decisions for one architecture.
#[derive(Debug)]
pub struct ArchPlan {
    pub arch: Arch,
    /// Every number the profile names, with what it gets.
    pub calls: BTreeMap<u32, Handler>,
    /// For numbers not named, up to the highest named.
    pub default: u32,
    /// For numbers above the highest named: ENOSYS, or `default`.
    pub beyond: u32,
}

#[derive(Debug)]
pub struct Plan {
    /// The listed architectures this machine runs.
    pub arches: Vec<ArchPlan>,
    /// For system calls of an architecture not listed.
    pub unlisted: u32,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2), NEW_LISTENER included when a rule returns
    /// SCMP_ACT_NOTIFY.
    pub flags: u32,
}

impl Plan {
    pub fn arch(&self, a: Arch) -> Option<&ArchPlan> {
        self.arches.iter().find(|p| p.arch == a)
    }
}

const FIELD: &str = "config.json linux.seccomp";

/// The action's SECCOMP_RET_* value.
pub fn action_value(a: Action, errno: Option<u32>, field: &str) -> Result<u32> {
    let data = |default: u32| -> Result<u32> {
        let e = errno.unwrap_or(default);
        if e > MAX_ERRNO {
            return Err(err!("{field}: errno {e} is above the kernel's {MAX_ERRNO}"));
        }
        Ok(e)
    };
    Ok(match a {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        // EPERM when no errno is given, as runc.
        Action::ScmpActErrno => RET_ERRNO | data(libc::EPERM as u32)?,
        Action::ScmpActTrace => RET_TRACE | data(libc::EPERM as u32)?,
        Action::ScmpActNotify => RET_USER_NOTIF,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
    })
}

/// Precedence between actions, most restrictive first: the kernel orders the actions of
/// several filters by their value as a signed number.
fn severity(ret: u32) -> i32 {
    (ret & RET_ACTION) as i32
}

/// Allow-like defaults let calls through: ALLOW, LOG, and TRACE (a tracer must handle new
/// calls itself; ENOSYS would disrupt its emulation), as runc's `isAllowAction`.
fn permissive(ret: u32) -> bool {
    matches!(ret & RET_ACTION, RET_ALLOW | RET_LOG | RET_TRACE)
}

/// runc's rule (libcontainer/seccomp/patchbpf): unless the default action is allow-like,
/// or already ERRNO(ENOSYS), a call whose number is above the highest number the profile
/// names for its architecture gets ENOSYS, not the default. Such a call is newer than the
/// profile, and a libc seeing ENOSYS falls back to an older call (clone3 to clone,
/// faccessat2 to faccessat); EPERM would make it fail instead. runc decides on
/// defaultErrnoRet alone (38 skips the rule), which we follow.
pub fn enosys(default: u32, default_errno_ret: Option<u32>) -> bool {
    !permissive(default) && default_errno_ret != Some(ENOSYS)
}

/// What a call of an architecture the profile does not list gets.
///
/// - A denying default (KILL*, TRAP, ERRNO): the default. The profile says what calls it
///   does not name get; an unlisted architecture's calls are all unnamed. (libseccomp, and
///   so runc, kill the thread instead; the default is friendlier and no less strict.)
/// - A permissive default (ALLOW, LOG, TRACE): KILL_PROCESS. The profile is a blocklist
///   written for the listed architectures; letting another architecture through would let
///   `int 0x80` or x32 run exactly what it blocks.
pub fn unlisted_action(default: u32) -> u32 {
    if permissive(default) {
        RET_KILL_PROCESS
    } else {
        default
    }
}

pub fn plan(p: &LinuxSeccomp) -> Result<Plan> {
    let default = action_value(
        p.default_action(),
        p.default_errno_ret(),
        &format!("{FIELD}.defaultErrnoRet"),
    )?;
    if default == RET_USER_NOTIF {
        // The init's last calls (the one that hands the notify fd to the agent among
        // them) would wait on an agent that never got the fd.
        return Err(err!(
            "{FIELD}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
        ));
    }

    let mut arches: Vec<Arch> = Vec::new();
    for (i, a) in p.architectures().iter().flatten().enumerate() {
        match Arch::from_oci(*a) {
            Some(a) if !arches.contains(&a) => arches.push(a),
            Some(_) => {}
            None => log::debug!(
                "{FIELD}.architectures[{i}]: {a:?} does not run on this machine; skipped"
            ),
        }
    }
    if arches.is_empty() {
        // libseccomp's filters always include the native architecture.
        arches.push(Arch::NATIVE);
    }

    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
            // The init is single-threaded: nothing to synchronise (runc ignores it too).
            Flag::SeccompFilterFlagTsync => 0,
        };
    }

    // (rules of the call, in profile order) per architecture and number.
    let mut calls: BTreeMap<(Arch, u32), Vec<Rule>> = BTreeMap::new();
    let mut notify_at: Option<usize> = None;
    for (i, sc) in p.syscalls().iter().flatten().enumerate() {
        let field = format!("{FIELD}.syscalls[{i}]");
        let action = action_value(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
        if sc.errno_ret().is_some() && !matches!(action & RET_ACTION, RET_ERRNO | RET_TRACE) {
            log::debug!("{field}.errnoRet: ignored, the action is not ERRNO or TRACE");
        }
        if action == RET_USER_NOTIF {
            notify_at.get_or_insert(i);
        }
        let rules = rules_of(sc.args().as_deref().unwrap_or_default(), action, &field)?;
        if sc.names().is_empty() {
            return Err(err!("{field}.names: empty"));
        }
        for (j, name) in sc.names().iter().enumerate() {
            if name.is_empty() {
                return Err(err!("{field}.names[{j}]: empty"));
            }
            if action == RET_USER_NOTIF && name == "sendmsg" {
                // berth's init sends the notify fd to the agent with sendmsg, after the
                // filter is loaded (runc forbids `write`, which its init uses likewise).
                return Err(err!(
                    "{field}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for sendmsg, which hands the notify fd to the agent"
                ));
            }
            if !Arch::known_anywhere(name) {
                log::debug!("{field}.names[{j}]: unknown system call {name:?} skipped");
                continue;
            }
            for a in &arches {
                if let Some(nr) = a.nr(name) {
                    calls
                        .entry((*a, nr))
                        .or_default()
                        .extend(rules.iter().cloned());
                }
            }
        }
    }

    if let Some(i) = notify_at
        && p.listener_path().is_none()
    {
        return Err(err!(
            "{FIELD}.listenerPath: not set, but syscalls[{i}] uses SCMP_ACT_NOTIFY"
        ));
    }
    if notify_at.is_some() {
        flags |= FLAG_NEW_LISTENER;
    } else {
        if p.listener_path().is_some() {
            log::debug!("{FIELD}.listenerPath: ignored, no rule uses SCMP_ACT_NOTIFY");
        }
        if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
            // The kernel refuses it without a listener.
            log::debug!(
                "{FIELD}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored, no rule uses SCMP_ACT_NOTIFY"
            );
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }
    }

    let with_enosys = enosys(default, p.default_errno_ret());
    let plans = ALL
        .iter()
        .filter(|a| arches.contains(a))
        .map(|&a| {
            let mine: BTreeMap<u32, Handler> = calls
                .iter()
                .filter(|((ca, _), _)| *ca == a)
                .map(|((_, nr), rules)| (*nr, handler(rules.clone(), default)))
                .collect();
            // runc: an architecture whose profile names nothing gets no ENOSYS rule.
            let beyond = if with_enosys && !mine.is_empty() {
                RET_ERRNO | ENOSYS
            } else {
                default
            };
            ArchPlan {
                arch: a,
                calls: mine,
                default,
                beyond,
            }
        })
        .collect();
    Ok(Plan {
        arches: plans,
        unlisted: unlisted_action(default),
        flags,
    })
}

/// The rules of one `syscalls[]` entry.
fn rules_of(
    args: &[oci_spec::runtime::LinuxSeccompArg],
    action: u32,
    field: &str,
) -> Result<Vec<Rule>> {
    let mut conds = Vec::with_capacity(args.len());
    for (k, a) in args.iter().enumerate() {
        if a.index() >= MAX_ARGS {
            return Err(err!(
                "{field}.args[{k}].index: {} is not a system call argument (0 to 5)",
                a.index()
            ));
        }
        let op = match a.op() {
            Operator::ScmpCmpNe => CmpOp::Ne,
            Operator::ScmpCmpLt => CmpOp::Lt,
            Operator::ScmpCmpLe => CmpOp::Le,
            Operator::ScmpCmpEq => CmpOp::Eq,
            Operator::ScmpCmpGe => CmpOp::Ge,
            Operator::ScmpCmpGt => CmpOp::Gt,
            Operator::ScmpCmpMaskedEq => CmpOp::MaskedEq(a.value()),
        };
        let value = match op {
            CmpOp::MaskedEq(_) => a.value_two().unwrap_or(0),
            _ => a.value(),
        };
        conds.push(ArgCond {
            index: a.index() as u8,
            op,
            value,
        });
    }
    let mut seen = [false; MAX_ARGS];
    let repeated = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    Ok(if repeated {
        conds
            .into_iter()
            .map(|c| Rule {
                conds: vec![c],
                action,
            })
            .collect()
    } else {
        vec![Rule { conds, action }]
    })
}

/// One call's rules, most restrictive first (stable: ties keep profile order), cut after
/// the first unconditional one, without trailing rules that give the fallback anyway.
fn handler(mut rules: Vec<Rule>, default: u32) -> Handler {
    rules.sort_by_key(|r| severity(r.action));
    if let Some(i) = rules.iter().position(|r| r.conds.is_empty()) {
        rules.truncate(i + 1);
    }
    let fallback = match rules.last() {
        Some(r) if r.conds.is_empty() => rules.pop().map_or(default, |r| r.action),
        _ => default,
    };
    while rules.last().is_some_and(|r| r.action == fallback) {
        rules.pop();
    }
    if rules.is_empty() {
        Handler::Ret(fallback)
    } else {
        Handler::Rules { rules, fallback }
    }
}
