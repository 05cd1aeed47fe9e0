//! Who the container process is: rlimits, uid/gid/groups, capabilities, noNewPrivileges.
//!
//! Order matters: the bounding set is reduced while the init is still root; PR_SET_KEEPCAPS
//! keeps the permitted set across setresuid; then the inheritable, effective, permitted
//! and ambient sets are set to exactly what config.json lists. Inheritable is never filled
//! in beyond the config (CVE-2022-29162).

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

use crate::err;
use crate::error::{Context, Result};

const RLIMITS: &[(PosixRlimitType, libc::__rlimit_resource_t)] = &[
    (PosixRlimitType::RlimitCpu, libc::RLIMIT_CPU),
    (PosixRlimitType::RlimitFsize, libc::RLIMIT_FSIZE),
    (PosixRlimitType::RlimitData, libc::RLIMIT_DATA),
    (PosixRlimitType::RlimitStack, libc::RLIMIT_STACK),
    (PosixRlimitType::RlimitCore, libc::RLIMIT_CORE),
    (PosixRlimitType::RlimitRss, libc::RLIMIT_RSS),
    (PosixRlimitType::RlimitNproc, libc::RLIMIT_NPROC),
    (PosixRlimitType::RlimitNofile, libc::RLIMIT_NOFILE),
    (PosixRlimitType::RlimitMemlock, libc::RLIMIT_MEMLOCK),
    (PosixRlimitType::RlimitAs, libc::RLIMIT_AS),
    (PosixRlimitType::RlimitLocks, libc::RLIMIT_LOCKS),
    (PosixRlimitType::RlimitSigpending, libc::RLIMIT_SIGPENDING),
    (PosixRlimitType::RlimitMsgqueue, libc::RLIMIT_MSGQUEUE),
    (PosixRlimitType::RlimitNice, libc::RLIMIT_NICE),
    (PosixRlimitType::RlimitRtprio, libc::RLIMIT_RTPRIO),
    (PosixRlimitType::RlimitRttime, libc::RLIMIT_RTTIME),
];

pub fn set_rlimits(p: &Process) -> Result<()> {
    for (i, r) in p
        .rlimits()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("config.json process.rlimits[{i}] ({})", r.typ());
        let res = RLIMITS
            .iter()
            .find(|(t, _)| *t == r.typ())
            .map(|(_, n)| *n)
            .ok_or_else(|| err!("{field}: unknown type"))?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads one initialised struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = nix::errno::Errno::last();
            let hint = if e == nix::errno::Errno::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(e).with_ctx(|| {
                format!(
                    "{field}: setrlimit soft {} hard {}{hint}",
                    r.soft(),
                    r.hard()
                )
            });
        }
    }
    Ok(())
}

type Set = HashSet<Capability>;

fn to_caps(field: &str, list: &Option<Capabilities>) -> Result<Set> {
    let mut out = Set::new();
    for c in list.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap =
            Capability::from_str(&name).map_err(|_| err!("{field}: unknown capability {name}"))?;
        out.insert(cap);
    }
    Ok(out)
}

/// Become the configured user with the configured capabilities.
pub fn become_user(p: &Process) -> Result<()> {
    let caps = p.capabilities().as_ref();
    let sets = match caps {
        Some(c) => Some([
            to_caps("config.json process.capabilities.bounding", c.bounding())?,
            to_caps("config.json process.capabilities.effective", c.effective())?,
            to_caps(
                "config.json process.capabilities.inheritable",
                c.inheritable(),
            )?,
            to_caps("config.json process.capabilities.permitted", c.permitted())?,
            to_caps("config.json process.capabilities.ambient", c.ambient())?,
        ]),
        None => None,
    };
    if let Some([bounding, ..]) = &sets {
        let host =
            caps::read(None, CapSet::Bounding).map_err(|e| err!("read the bounding set: {e}"))?;
        let names = [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ];
        for (set, name) in sets.iter().flatten().zip(names) {
            let mut missing: Vec<String> = set.difference(&host).map(|c| c.to_string()).collect();
            if !missing.is_empty() {
                missing.sort();
                return Err(err!(
                    "config.json process.capabilities.{name}: {} not in this host's bounding set, so no process here can hold it",
                    missing.join(", ")
                ));
            }
        }
        for c in host.difference(bounding) {
            caps::drop(None, CapSet::Bounding, *c)
                .map_err(|e| err!("config.json process.capabilities.bounding: drop {c}: {e}"))?;
        }
    }

    let user = p.user();
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    let groups: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).ctx("config.json process.user.additionalGids: setgroups")?;
    keep_caps(true)?;
    setresgid(gid, gid, gid)
        .with_ctx(|| format!("config.json process.user.gid: setresgid {gid}"))?;
    setresuid(uid, uid, uid)
        .with_ctx(|| format!("config.json process.user.uid: setresuid {uid}"))?;
    keep_caps(false)?;

    if let Some([_, effective, inheritable, permitted, ambient]) = &sets {
        let set = |s: CapSet, v: &Set, name: &str| {
            caps::set(None, s, v).map_err(|e| err!("config.json process.capabilities.{name}: {e}"))
        };
        set(CapSet::Inheritable, inheritable, "inheritable")?;
        set(CapSet::Effective, effective, "effective")?;
        set(CapSet::Permitted, permitted, "permitted")?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err!("clear the ambient set: {e}"))?;
        for c in ambient {
            caps::raise(None, CapSet::Ambient, *c)
                .map_err(|e| err!("config.json process.capabilities.ambient: raise {c}: {e} (an ambient capability must also be permitted and inheritable)"))?;
        }
    }
    Ok(())
}

fn keep_caps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("prctl(PR_SET_KEEPCAPS)");
    }
    Ok(())
}

pub fn no_new_privileges() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("config.json process.noNewPrivileges: prctl");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rlimit_type_has_a_number() {
        // Every variant the spec crate knows must be in the table.
        let json = serde_json::json!([
            "RLIMIT_CPU",
            "RLIMIT_FSIZE",
            "RLIMIT_DATA",
            "RLIMIT_STACK",
            "RLIMIT_CORE",
            "RLIMIT_RSS",
            "RLIMIT_NPROC",
            "RLIMIT_NOFILE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_AS",
            "RLIMIT_LOCKS",
            "RLIMIT_SIGPENDING",
            "RLIMIT_MSGQUEUE",
            "RLIMIT_NICE",
            "RLIMIT_RTPRIO",
            "RLIMIT_RTTIME"
        ]);
        let types: Vec<PosixRlimitType> = serde_json::from_value(json).unwrap();
        for t in types {
            assert!(RLIMITS.iter().any(|(x, _)| *x == t), "{t}");
        }
    }

    #[test]
    fn capability_names_map_to_kernel_caps() {
        let c: Capabilities =
            serde_json::from_value(serde_json::json!(["CAP_KILL", "CAP_SYS_ADMIN"])).unwrap();
        let s = to_caps("f", &Some(c)).unwrap();
        assert!(s.contains(&Capability::CAP_KILL) && s.contains(&Capability::CAP_SYS_ADMIN));
    }
}
