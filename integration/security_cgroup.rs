//! CVE-2023-25809 class: a container without a cgroup namespace of its own gets a cgroup
//! mount that shows (and lets it write) the host's hierarchy.
//!
//! berth mounts, without a cgroup namespace, a bind of the container's *own* cgroup in
//! each hierarchy, never a fresh mount of the hierarchy (which the kernel roots at the
//! host's root), and applies the mount's options to it: `ro` (as `berth spec` and the
//! engines write it) makes it read-only (`src/rootfs/cgroupfs.rs`, `hierarchy`).
//!
//! The unsafe variant: a fresh cgroup2 mount, as a runtime would make it without a cgroup
//! namespace, is rooted at the host's `/`: the same check fails on it.

use std::process::Command;

use serde_json::json;

use crate::common::{Env, drop_namespace, parse_mountinfo};

/// Every cgroup mount of a mountinfo text: (mount point, root in the hierarchy, options).
fn cgroup_mounts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let f: Vec<&str> = pre.split(' ').collect();
            Some((f[4].to_string(), f[3].to_string(), f[5].to_string()))
        })
        .collect()
}

/// Mounts that expose the hierarchy above the container's own cgroup.
fn exposing(mounts: &[(String, String, String)]) -> Vec<String> {
    mounts
        .iter()
        .filter(|(_, root, _)| root == "/")
        .map(|(p, r, o)| format!("{p} root={r} {o}"))
        .collect()
}

#[test]
fn a_fresh_cgroup_mount_is_caught() {
    let Some(t) = Env::new("sec_25809_naive") else {
        return;
    };
    let dir = t.dir.join("cg");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "mount -t cgroup2 none {d} && cat /proc/self/mountinfo",
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mine: Vec<_> = cgroup_mounts(&text)
        .into_iter()
        .filter(|(p, _, _)| p == dir.to_str().unwrap())
        .collect();
    assert_eq!(mine.len(), 1, "{text}");
    assert!(
        !exposing(&mine).is_empty(),
        "a fresh mount must show the host's root: {mine:?}"
    );
}

const INSIDE: &str = "cat /proc/self/mountinfo; echo ---; \
     for d in /sys/fs/cgroup /sys/fs/cgroup/*; do \
       touch $d/pwned 2>/dev/null && echo \"WROTE $d\"; \
       mkdir $d/pwned-dir 2>/dev/null && echo \"MKDIR $d\"; \
     done; echo end";

#[test]
fn cgroup_mount_without_a_cgroup_namespace() {
    let Some(t) = Env::new("sec_25809") else {
        return;
    };
    // The default mount (ro), and the same without `ro`: the container's own cgroup
    // only, and read-only when asked.
    for ro in [true, false] {
        let out = t.run_sh(INSIDE, |c| {
            drop_namespace(c, "cgroup");
            if !ro {
                for m in c["mounts"].as_array_mut().unwrap() {
                    if m["type"] == "cgroup" {
                        m["options"] = json!(["nosuid", "noexec", "nodev", "relatime"]);
                    }
                }
            }
        });
        out.ok();
        let (mi, rest) = out.stdout.split_once("---\n").unwrap();
        let mounts = cgroup_mounts(mi);
        assert!(!mounts.is_empty(), "no cgroup mount\n{out}");
        assert_eq!(exposing(&mounts), Vec::<String>::new(), "ro {ro}\n{out}");
        let sysfs = parse_mountinfo(mi)
            .into_iter()
            .filter(|m| m.mount_point == "/sys")
            .collect::<Vec<_>>();
        assert!(
            sysfs.iter().all(|m| m.options.iter().any(|o| o == "ro")),
            "{out}"
        );
        if ro {
            for (p, _, o) in &mounts {
                assert!(o.split(',').any(|x| x == "ro"), "{p} is {o}\n{out}");
            }
            assert!(!rest.contains("WROTE") && !rest.contains("MKDIR"), "{out}");
        }
        assert!(rest.ends_with("end\n"), "{out}");
    }
}
