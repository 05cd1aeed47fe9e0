//! `berth features`: the runtime-spec features document, built from the same tables the
//! runtime uses, so it lists what berth implements and nothing more.

use serde_json::{Value, json};

use crate::hooks;
use crate::process::namespaces;
use crate::rootfs::options;

pub fn features() -> Value {
    let mut caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": hooks::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "mountOptions": options::known_words(),
        "linux": {
            "namespaces": namespaces::names(),
            "capabilities": caps,
            "cgroup": crate::cgroups::features(),
            "seccomp": crate::seccomp::features(),
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_all_eight_namespaces_and_known_caps() {
        let f = features();
        assert_eq!(f["linux"]["namespaces"].as_array().unwrap().len(), 8);
        let caps = f["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(
            f["mountOptions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "rbind")
        );
    }
}
