//! What the container's process sees of itself: its pid, hostname, environment, working
//! directory and identity, each as config.json says.

use serde_json::json;

use crate::common::{Env, drop_namespace};

#[test]
fn process_is_pid_1_of_its_own_pid_namespace() {
    let Some(t) = Env::new("pid1") else { return };
    let out = t.run_sh(
        "echo $$; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'",
        |_| {},
    );
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    // /proc is this namespace's: pid 1 is our own shell, and only a handful of pids exist.
    assert_eq!(lines[1], "sh", "{out}");
    let n: usize = lines[2].parse().unwrap();
    assert!(
        n <= 3,
        "{n} processes visible: /proc shows the host's pids?\n{out}"
    );

    // Control: without a pid namespace the shell is not pid 1.
    let out = t.run_sh("echo $$", |c| drop_namespace(c, "pid"));
    out.ok();
    assert_ne!(out.stdout.trim(), "1", "{out}");
}

#[test]
fn hostname_is_the_configured_one() {
    let Some(t) = Env::new("hostname") else {
        return;
    };
    for name in [
        "berth-test-host",
        "h",
        "a-much-longer-name-for.the.container",
    ] {
        let out = t.run_sh("hostname; cat /proc/sys/kernel/hostname", |c| {
            c["hostname"] = json!(name)
        });
        out.ok();
        assert_eq!(out.stdout, format!("{name}\n{name}\n"), "{out}");
    }
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(
        host.to_str(),
        Some("berth-test-host"),
        "the host's name was changed"
    );
}

#[test]
fn environment_is_exactly_the_configured_one() {
    let Some(t) = Env::new("env") else { return };
    let env = [
        "PATH=/bin",
        "BERTH_ONE=1",
        "BERTH_SPACES=two words  here",
        "BERTH_EQ=a=b=c",
        "BERTH_EMPTY=",
    ];
    let out = t.run_sh("env", |c| c["process"]["env"] = json!(env));
    out.ok();
    let mut got: Vec<&str> = out.stdout.lines().collect();
    // busybox sh exports these itself.
    got.retain(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="));
    got.sort_unstable();
    let mut want = env.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{out}");
}

#[test]
fn working_directory_is_process_cwd() {
    let Some(t) = Env::new("cwd") else { return };
    for cwd in ["/tmp", "/etc", "/", "/opt/masked-dir"] {
        let out = t.run_sh("pwd -P; ls", |c| c["process"]["cwd"] = json!(cwd));
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], cwd, "{out}");
        if cwd == "/opt/masked-dir" {
            // The directory of the rootfs, not a same-named one elsewhere.
            assert_eq!(lines[1..], ["inner"], "{out}");
        }
    }
}

#[test]
fn user_and_groups_are_the_configured_ones() {
    let Some(t) = Env::new("user") else { return };
    // (uid, gid, additionalGids)
    let table: &[(u32, u32, &[u32])] = &[
        (1000, 1000, &[2000, 3000]),
        (0, 0, &[]),
        (1234, 5678, &[]),
        (65534, 65534, &[10, 20, 30]),
    ];
    let script = "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status";
    for &(uid, gid, extra) in table {
        let out = t.run_sh(script, |c| {
            c["process"]["user"] = json!({ "uid": uid, "gid": gid, "additionalGids": extra });
        });
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let ctx = format!("uid {uid} gid {gid} groups {extra:?}\n{out}");
        assert_eq!(lines[0], uid.to_string(), "{ctx}");
        assert_eq!(lines[1], gid.to_string(), "{ctx}");
        let mut groups: Vec<u32> = lines[2]
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        groups.sort_unstable();
        let mut want: Vec<u32> = extra.iter().copied().chain([gid]).collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(groups, want, "{ctx}");
        let status = |key: &str| -> Vec<u32> {
            let l = lines
                .iter()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("{ctx}"));
            l[key.len()..]
                .split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect()
        };
        // real, effective, saved and fs ids are all the configured ones.
        assert_eq!(status("Uid:"), [uid; 4], "{ctx}");
        assert_eq!(status("Gid:"), [gid; 4], "{ctx}");
        let mut supp = status("Groups:");
        supp.sort_unstable();
        assert_eq!(
            supp, extra,
            "supplementary groups must be exactly additionalGids\n{ctx}"
        );
    }
}

#[test]
fn unprivileged_user_cannot_write_roots_files() {
    let Some(t) = Env::new("user_perms") else {
        return;
    };
    // /tmp of the shared rootfs is 1777; /etc is root's 0755. The root is read-only anyway
    // for the second write, so use a writable root to see the permission check itself.
    let out = t.run_sh("echo x > /etc/nope; echo rc=$?", |c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        c["root"]["readonly"] = json!(false);
    });
    out.ok();
    assert!(out.stdout.contains("rc=1"), "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
}
