//! CVE-2024-21626 ("Leaky Vessels"): a runtime fd to a host directory leaks into the
//! container's process, and `process.cwd` (or `exec --cwd`) set to `/proc/self/fd/N`
//! makes that host directory the process's working directory: `..` from there walks the
//! host's tree, past the container's root.
//!
//! berth: every fd but stdio (and the `--preserve-fds` ones) is closed before execve, and
//! the cwd is resolved inside the container's root by fd with `RESOLVE_NO_MAGICLINKS`,
//! then checked with getcwd (`src/process/program.rs`, `enter_cwd`; `close_fds`).
//!
//! The unsafe variant: a naive runtime (a static C program) that keeps an fd of a host
//! directory open, chroots into the image and `chdir`s to `/proc/self/fd/N` by path. Its
//! process writes into the host directory, and the test sees that.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Env, Out};
use crate::security_support::{HostState, host_target, static_probe};

/// Holds an fd of a host directory (as fd 7), makes a mount namespace, mounts proc in the
/// image, chroots into it, chdirs to `/proc/self/fd/7` and runs `sh -c SCRIPT` there.
const NAIVE_CWD: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
int main(int argc, char **argv) {
	char p[4096];
	if (argc < 4) return 2;
	int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dup2(fd, 7) < 0) { perror("open host dir"); return 1; }
	snprintf(p, sizeof p, "%s/proc", argv[1]);
	if (unshare(CLONE_NEWNS) || mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) ||
	    mount("proc", p, "proc", 0, 0) || chroot(argv[1]) || chdir("/proc/self/fd/7")) {
		perror("naive");
		return 1;
	}
	execl("/bin/sh", "sh", "-c", argv[3], (char *)0);
	perror("exec");
	return 1;
}
"#;

/// What the container's process does with the cwd it got: writes a file there, and tries
/// to reach a host directory by climbing out of it.
fn attack_script(target: &Path) -> String {
    let up = "../".repeat(30);
    let rel = target.strip_prefix("/").unwrap().display();
    format!(
        "echo pwned > ./pwned-cwd 2>/dev/null; echo pwned > {up}{rel}/pwned-up 2>/dev/null; \
         cat {up}{rel}/precious 2>/dev/null | sed 's/^/LEAK: /'; echo cwd=$(pwd)"
    )
}

fn cwd_cases() -> Vec<&'static str> {
    vec![
        "/proc/self/fd/3",
        "/proc/self/fd/4",
        "/proc/self/fd/5",
        "/proc/self/fd/6",
        "/proc/self/fd/7",
        "/proc/self/fd/8",
        "/proc/self/fd/9",
        "/proc/self/fd/10",
        "/proc/thread-self/fd/5",
        "/proc/self/cwd",
        "/proc/self/root/..",
        "/proc/1/cwd",
        "/proc/self/fd/7/..",
        // Through the image's own symlink to a magic link.
        "/work",
        "/work/sub",
    ]
}

/// A run either fails naming the cwd, or its process ran inside the container's root.
fn refused_or_inside(out: &Out, cwd: &str) -> Result<(), String> {
    if out.status.success() {
        if out.stdout.contains("LEAK:") {
            return Err(format!("cwd {cwd}: the host's file was read\n{out}"));
        }
        return Ok(());
    }
    if out.stderr.contains("cwd") {
        return Ok(());
    }
    Err(format!("cwd {cwd}: failed, but not naming the cwd\n{out}"))
}

#[test]
fn cwd_through_a_leaked_fd_is_caught_against_a_naive_runtime() {
    let Some(t) = Env::new("sec_21626_naive") else {
        return;
    };
    let Some(naive) = static_probe("naive-cwd", NAIVE_CWD) else {
        return;
    };
    let (dir, _) = host_target(&t, "host-leaked");
    let b = t.bundle_own_rootfs(|_| {}, |_| {});
    let host = HostState::new(&t, &[&dir]);
    let out = std::process::Command::new(&naive)
        .arg(b.dir.join("rootfs"))
        .arg(&dir)
        .arg(attack_script(&dir))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let changes = host.assert_caught("chdir to /proc/self/fd/7 by path");
    assert!(said.contains("LEAK: precious host data"), "{said}");
    assert!(dir.join("pwned-cwd").exists(), "{changes:?}");
}

#[test]
fn process_cwd_through_proc_self_fd_never_reaches_the_host() {
    let Some(t) = Env::new("sec_21626_run") else {
        return;
    };
    let (dir, _) = host_target(&t, "host-leaked");
    let host = HostState::new(&t, &[&dir]);
    let mut failures = Vec::new();
    for cwd in cwd_cases() {
        let b = t.bundle_own_rootfs(
            |r| std::os::unix::fs::symlink("/proc/self/fd/7", r.join("work")).unwrap(),
            |c| {
                c["process"]["cwd"] = json!(cwd);
                c["process"]["args"] = json!(["sh", "-c", attack_script(&dir)]);
            },
        );
        let id = t.id("cwd");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        if let Err(e) = refused_or_inside(&out, cwd) {
            failures.push(e);
        }
    }
    host.assert_same(&"process.cwd cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exec_cwd_through_proc_self_fd_never_reaches_the_host() {
    let Some(t) = Env::new("sec_21626_exec") else {
        return;
    };
    let (dir, _) = host_target(&t, "host-leaked");
    let b = t.bundle_own_rootfs(
        |r| std::os::unix::fs::symlink("/proc/self/fd/7", r.join("work")).unwrap(),
        |c| c["process"]["args"] = json!(["sleep", "1000"]),
    );
    let id = t.id("exec-cwd");
    t.run_detached(&b, &id);
    let host = HostState::new(&t, &[&dir]);
    let mut failures = Vec::new();
    for cwd in cwd_cases() {
        let out = t.berth(&["exec", "--cwd", cwd, &id, "sh", "-c", &attack_script(&dir)]);
        if let Err(e) = refused_or_inside(&out, cwd) {
            failures.push(e);
        }
        // The same through --process.
        let mut p: Value = b.config()["process"].clone();
        p["cwd"] = json!(cwd);
        p["args"] = json!(["sh", "-c", attack_script(&dir)]);
        let pf = t.dir.join("process.json");
        fs::write(&pf, p.to_string()).unwrap();
        let out = t.berth(&["exec", "--process", pf.to_str().unwrap(), &id]);
        if let Err(e) = refused_or_inside(&out, cwd) {
            failures.push(format!("--process: {e}"));
        }
    }
    host.assert_same(&"exec --cwd cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fds the container's shell holds (`ls -l /proc/$$/fd`: the listing's own fds are
/// ls's, not the shell's), as "N -> target".
fn open_fds(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(a, b)| format!("{} -> {b}", a.rsplit(' ').next().unwrap_or("")))
        .collect()
}

const LIST_FDS: &str = "ls -l /proc/$$/fd";

#[test]
fn no_runtime_fd_reaches_the_container() {
    let Some(t) = Env::new("sec_21626_fds") else {
        return;
    };
    // The init, as run and as create + start, and an exec'd process: only stdio.
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", LIST_FDS]));
    let id = t.id("fds");
    let out = t.run(&b, &id);
    out.ok();
    let fds = open_fds(&out);
    assert_eq!(fds.len(), 3, "run: {fds:#?}\n{out}");
    assert!(
        fds.iter().all(|f| f.starts_with(['0', '1', '2'])),
        "{fds:#?}"
    );

    let id = t.id("fds-created");
    let created = t.create(&b, &id, &[]);
    created.ok();
    t.berth(&["start", &id]).ok();
    crate::common::wait_until(std::time::Duration::from_secs(10), || {
        created.stdout_now().matches(" -> ").count() >= 3
    });
    let now = Out {
        stdout: created.stdout_now(),
        ..created
    };
    let fds = open_fds(&now);
    assert_eq!(fds.len(), 3, "create + start: {fds:#?}");

    let b = t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = t.id("fds-exec");
    t.run_detached(&b, &id);
    let out = t.berth(&["exec", &id, "sh", "-c", LIST_FDS]);
    out.ok();
    let fds = open_fds(&out);
    assert_eq!(fds.len(), 3, "exec: {fds:#?}\n{out}");
}
