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

/// The five capability sets of config.json, checked.
pub struct CapSets {
    effective: Set,
    inheritable: Set,
    permitted: Set,
    ambient: Set,
}

/// Become the configured user (groups, gid, uid) and reduce the bounding set.
///
/// The permitted set is kept whole and made effective again, so the init keeps its
/// privileges until its last steps; [`apply_caps`] then sets the configured sets. Every
/// capability value is checked here, so a bad one fails `create`, not `start`.
pub fn become_user(p: &Process) -> Result<Option<CapSets>> {
    let sets = match p.capabilities().as_ref() {
        Some(c) => Some(check_caps(c)?),
        None => None,
    };

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
    // Leaving uid 0 cleared the effective set: take the permitted set back for now.
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| err!("read the permitted set: {e}"))?;
    caps::set(None, CapSet::Effective, &permitted)
        .map_err(|e| err!("restore the effective set: {e}"))?;
    Ok(sets)
}

fn check_caps(c: &oci_spec::runtime::LinuxCapabilities) -> Result<CapSets> {
    let f = "config.json process.capabilities";
    let bounding = to_caps(&format!("{f}.bounding"), c.bounding())?;
    let sets = CapSets {
        effective: to_caps(&format!("{f}.effective"), c.effective())?,
        inheritable: to_caps(&format!("{f}.inheritable"), c.inheritable())?,
        permitted: to_caps(&format!("{f}.permitted"), c.permitted())?,
        ambient: to_caps(&format!("{f}.ambient"), c.ambient())?,
    };
    let host =
        caps::read(None, CapSet::Bounding).map_err(|e| err!("read the bounding set: {e}"))?;
    let all = [
        ("bounding", &bounding),
        ("effective", &sets.effective),
        ("inheritable", &sets.inheritable),
        ("permitted", &sets.permitted),
        ("ambient", &sets.ambient),
    ];
    for (name, set) in all {
        let missing = names(set.difference(&host));
        if !missing.is_empty() {
            return Err(err!(
                "{f}.{name}: {missing} not in this host's bounding set, so no process here can hold it"
            ));
        }
    }
    // capset(2) lets an inheritable capability in only from the bounding set.
    let outside = names(sets.inheritable.difference(&bounding));
    if !outside.is_empty() {
        return Err(err!(
            "{f}.inheritable: {outside} not in bounding; an inheritable capability must be in the bounding set"
        ));
    }
    let not_permitted = names(sets.effective.difference(&sets.permitted));
    if !not_permitted.is_empty() {
        return Err(err!(
            "{f}.effective: {not_permitted} not in permitted; an effective capability must be permitted"
        ));
    }
    let both: Set = sets
        .permitted
        .intersection(&sets.inheritable)
        .copied()
        .collect();
    let bad_ambient = names(sets.ambient.difference(&both));
    if !bad_ambient.is_empty() {
        return Err(err!(
            "{f}.ambient: {bad_ambient} not in both permitted and inheritable, which the kernel requires of an ambient capability"
        ));
    }
    for cap in host.difference(&bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| err!("{f}.bounding: drop {cap}: {e}"))?;
    }
    Ok(sets)
}

fn names<'a>(it: impl Iterator<Item = &'a Capability>) -> String {
    let mut v: Vec<String> = it.map(|c| c.to_string()).collect();
    v.sort();
    v.join(", ")
}

/// Set the configured capability sets: the init's last privileged step before exec.
pub fn apply_caps(sets: &CapSets) -> Result<()> {
    let f = "config.json process.capabilities";
    let set =
        |s: CapSet, v: &Set, name: &str| caps::set(None, s, v).map_err(|e| err!("{f}.{name}: {e}"));
    set(CapSet::Inheritable, &sets.inheritable, "inheritable")?;
    set(CapSet::Effective, &sets.effective, "effective")?;
    set(CapSet::Permitted, &sets.permitted, "permitted")?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err!("clear the ambient set: {e}"))?;
    for c in &sets.ambient {
        caps::raise(None, CapSet::Ambient, *c).map_err(|e| err!("{f}.ambient: raise {c}: {e}"))?;
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
