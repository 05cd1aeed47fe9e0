//! CVE-2025-52881: the runtime writes procfs files for the container (`linux.sysctl` under
//! `/proc/sys`, `oomScoreAdj`, LSM labels under `/proc/self/attr`). A config mount over
//! `/proc/sys` or `/proc/self/attr` (a tmpfs, or a bind of anything) redirects a write made
//! by path after the mounts: into the mount's file, or through a symlink there into another
//! procfs file (`/proc/sysrq-trigger`).
//!
//! berth writes those files before the container's mounts exist, through the runtime's own
//! `/proc` opened by fd and checked to be procfs, each file opened beneath it with
//! `RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS` and checked again (`src/procfs.rs`,
//! `ProcFs::write`; `src/process/init.rs`), and it refuses mounts inside `/proc` other than
//! the files lxcfs emulates (`src/rootfs/mounts.rs`, `not_inside_proc`). Either way the
//! write lands in the real procfs file of the container's namespace, or nowhere.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::{Env, add_mount};
use crate::rootfs_support::mount;
use crate::security_support::{HostState, host_target};

/// A host directory that looks like /proc/sys: `net/ipv4/ip_forward` holding "0".
fn fake_proc_sys(t: &Env) -> std::path::PathBuf {
    let (dir, _) = host_target(t, "fake-proc-sys");
    fs::create_dir_all(dir.join("net/ipv4")).unwrap();
    fs::write(dir.join("net/ipv4/ip_forward"), "0\n").unwrap();
    fs::create_dir_all(dir.join("kernel")).unwrap();
    fs::write(dir.join("kernel/shmmni"), "0\n").unwrap();
    dir
}

#[test]
fn a_write_by_path_after_the_mounts_is_caught() {
    let Some(t) = Env::new("sec_52881_naive") else {
        return;
    };
    let fake = fake_proc_sys(&t);
    let b = t.bundle_own_rootfs(|_| {}, |_| {});
    let r = b.dir.join("rootfs");
    let host = HostState::new(&t, &[&fake]);
    // A runtime that mounts the config's bind over <rootfs>/proc/sys, then writes the
    // sysctl by path: the value lands in the bind's source.
    let script = format!(
        "mount -t proc proc {r}/proc && mount --bind {f} {r}/proc/sys && \
         echo 1 > {r}/proc/sys/net/ipv4/ip_forward",
        r = r.display(),
        f = fake.display()
    );
    let st = Command::new("unshare")
        .args(["-m", "-n", "-p", "-f", "--propagation", "private"])
        .args(["sh", "-c", &script])
        .status()
        .unwrap();
    assert!(st.success());
    host.assert_caught("sysctl written by path after a bind over /proc/sys");
    assert_eq!(
        fs::read_to_string(fake.join("net/ipv4/ip_forward")).unwrap(),
        "1\n"
    );
}

#[test]
fn config_mounts_over_proc_sys_or_attr_never_take_a_procfs_write() {
    let Some(t) = Env::new("sec_52881") else {
        return;
    };
    let fake = fake_proc_sys(&t);
    let host = HostState::new(&t, &[&fake]);
    // (destination, type, source); each with sysctls and oomScoreAdj set.
    let cases: Vec<(&str, &str, String)> = vec![
        ("/proc/sys", "tmpfs", "tmpfs".into()),
        ("/proc/sys", "bind", fake.display().to_string()),
        (
            "/proc/sys/net",
            "bind",
            fake.join("net").display().to_string(),
        ),
        ("/proc/self/attr", "tmpfs", "tmpfs".into()),
        ("/proc/self", "bind", fake.display().to_string()),
        ("/proc/1", "tmpfs", "tmpfs".into()),
        ("/evil/sys", "bind", fake.display().to_string()),
    ];
    for (dest, typ, src) in &cases {
        let b = t.bundle_own_rootfs(
            |r| symlink("/proc", r.join("evil")).unwrap(),
            |c| {
                let opts: &[&str] = if *typ == "bind" { &["bind"] } else { &[] };
                add_mount(c, mount(dest, typ, src, opts));
                c["linux"]["sysctl"] =
                    json!({ "net.ipv4.ip_forward": "1", "kernel.shmmni": "4000" });
                c["process"]["oomScoreAdj"] = json!(123);
                c["process"]["args"] = json!([
                    "sh",
                    "-c",
                    "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj"
                ]);
            },
        );
        let id = t.id("procmnt");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        // Refused, naming the mount…
        out.fails_with("is inside /proc");
        host.assert_same(&out);
    }
    // …and without such a mount the values land in the container's own procfs files.
    let out = t.run_sh(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj",
        |c| {
            c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.shmmni": "4000" });
            c["process"]["oomScoreAdj"] = json!(123);
        },
    );
    out.ok();
    assert_eq!(out.stdout, "1\n4000\n123\n", "{out}");
    host.assert_same(&out);
}

#[test]
fn a_bind_over_the_whole_proc_does_not_take_the_sysctl() {
    let Some(t) = Env::new("sec_52881_proc") else {
        return;
    };
    // `/proc` itself may be anything the config says (a bind of a host directory that
    // looks like procfs): the sysctl is still written to the real procfs, before the
    // mounts, and the host directory is left alone.
    let (fake_proc, _) = host_target(&t, "fake-proc");
    let sys = fake_proc.join("sys");
    fs::create_dir_all(sys.join("net/ipv4")).unwrap();
    fs::write(sys.join("net/ipv4/ip_forward"), "0\n").unwrap();
    fs::create_dir_all(fake_proc.join("self")).unwrap();
    fs::write(fake_proc.join("self/oom_score_adj"), "0\n").unwrap();
    let host = HostState::new(&t, &[&fake_proc]);
    let b = t.bundle(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/proc");
        add_mount(c, mount("/proc", "bind", &fake_proc, &["bind", "ro"]));
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
        c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
        c["process"]["oomScoreAdj"] = json!(321);
        c["process"]["args"] = json!(["sleep", "1000"]);
    });
    let id = t.id("proc-bind");
    let out = t.create(&b, &id, &[]);
    if !out.status.success() {
        // Refusing it is as good.
        host.assert_same(&out);
        return;
    }
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    // Read through the container's network namespace and the init's own procfs entry.
    let fwd = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&fwd.stdout), "1\n", "{out}");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap(),
        "321\n"
    );
    host.assert_same(&out);
    assert!(Path::new(&sys).exists());
}
