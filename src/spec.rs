//! `berth spec`: write a starting config.json, shaped as `runc spec` writes it.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::SpecArgs;
use crate::err;
use crate::error::{Context, Result};

pub fn spec(a: &SpecArgs) -> Result<()> {
    let dir = a.bundle.as_deref().unwrap_or(Path::new("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(err!("{} exists: remove it first", path.display()));
    }
    let cfg = if a.rootless {
        rootless(
            default_config(),
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        default_config()
    };
    let text = serde_json::to_string_pretty(&cfg)? + "\n";
    std::fs::write(&path, text).with_ctx(|| format!("write {}", path.display()))
}

pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": oci_spec::runtime::VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "berth",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The changes for a container run by an unprivileged user: a user namespace mapping the
/// caller to root, no network namespace, /sys bound from the host, no cgroup mount.
fn rootless(mut cfg: Value, uid: u32, gid: u32) -> Value {
    let linux = &mut cfg["linux"];
    linux["resources"] = json!({});
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    linux["namespaces"] = json!([
        { "type": "pid" }, { "type": "ipc" }, { "type": "uts" },
        { "type": "mount" }, { "type": "cgroup" }, { "type": "user" }
    ]);
    if let Some(mounts) = cfg["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_as_a_spec() {
        let s: oci_spec::runtime::Spec = serde_json::from_value(default_config()).unwrap();
        assert_eq!(s.root().as_ref().unwrap().path(), Path::new("rootfs"));
        assert_eq!(
            s.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .len(),
            6
        );
    }

    #[test]
    fn rootless_config_maps_the_caller() {
        let v = rootless(default_config(), 1000, 1001);
        let s: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.uid_mappings().as_ref().unwrap()[0].host_id(), 1000);
        assert_eq!(l.gid_mappings().as_ref().unwrap()[0].host_id(), 1001);
        assert!(!v.to_string().contains("\"network\""));
        assert!(!v.to_string().contains("gid=5"));
    }
}
