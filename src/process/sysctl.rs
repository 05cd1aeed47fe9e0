//! linux.sysctl: only keys that belong to a namespace the container has of its own may be
//! set (anything else would change the host), written through the verified procfs.

use std::collections::HashMap;

use nix::sched::CloneFlags;

use super::namespaces::Plan;
use crate::err;
use crate::error::{Context, Result};
use crate::procfs::ProcFs;

/// The namespace a sysctl key belongs to, or `None` for a host-wide key.
fn namespace_of(key: &str) -> Option<(&'static str, CloneFlags)> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Some(("ipc", CloneFlags::CLONE_NEWIPC));
    }
    if key.starts_with("net.") {
        return Some(("network", CloneFlags::CLONE_NEWNET));
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(("uts", CloneFlags::CLONE_NEWUTS));
    }
    None
}

/// `net.ipv4.ip_forward` → `sys/net/ipv4/ip_forward`; a `/` in a key stands for a `.` in a
/// name (`net.ipv4.conf.eth0/1.forwarding`), as sysctl(8) writes it.
fn proc_path(key: &str) -> Option<String> {
    let parts: Vec<String> = key.split('.').map(|p| p.replace('/', ".")).collect();
    if parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
        return None;
    }
    Some(format!("sys/{}", parts.join("/")))
}

/// Check every key against the container's namespaces (at create, before anything runs).
pub fn check(sysctls: &HashMap<String, String>, plan: &Plan) -> Result<()> {
    for key in sysctls.keys() {
        let field = format!("config.json linux.sysctl[{key:?}]");
        let (name, flag) = namespace_of(key).ok_or_else(|| {
            err!("{field}: not in any namespace the container can have, so setting it would change the host")
        })?;
        if !plan.has(flag) {
            return Err(err!(
                "{field}: belongs to the {name} namespace, and linux.namespaces has no {name} namespace for the container"
            ));
        }
        proc_path(key).ok_or_else(|| err!("{field}: malformed key"))?;
    }
    Ok(())
}

pub fn apply(sysctls: &HashMap<String, String>, proc: &ProcFs) -> Result<()> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let path = proc_path(key)
            .ok_or_else(|| err!("config.json linux.sysctl[{key:?}]: malformed key"))?;
        proc.write(&path, sysctls[key].as_bytes())
            .with_ctx(|| format!("config.json linux.sysctl[{key:?}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_namespaces_and_paths() {
        assert_eq!(
            namespace_of("net.ipv4.ip_forward").map(|n| n.0),
            Some("network")
        );
        assert_eq!(namespace_of("kernel.shmmax").map(|n| n.0), Some("ipc"));
        assert_eq!(namespace_of("fs.mqueue.msg_max").map(|n| n.0), Some("ipc"));
        assert_eq!(namespace_of("kernel.domainname").map(|n| n.0), Some("uts"));
        assert!(namespace_of("kernel.panic").is_none());
        assert!(namespace_of("vm.swappiness").is_none());
        assert_eq!(
            proc_path("net.ipv4.conf.eth0/1.forwarding").unwrap(),
            "sys/net/ipv4/conf/eth0.1/forwarding"
        );
        assert!(proc_path("net..x").is_none());
        assert!(proc_path("net.ipv4./..").is_none());
    }
}
