//! linux.seccomp, observed from inside the container: the errno a call gets, a process
//! killed by SIGSYS, `Seccomp: 2` in /proc/self/status (of exec'd processes too), the
//! engines' default profile running busybox, a blocklist defeated neither through
//! `int 0x80` nor x32, and a seccomp agent answering a call through the notify fd.
//!
//! `probe` is a tiny static program (integration/data/probe.c, built with gcc at test
//! time) that makes one raw system call, as x86_64, x32 or i386 (`int 0x80`), with
//! full 64-bit arguments, and prints what the kernel returned.

use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use crate::common::{Env, base_dir};

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;
/// 128 + SIGSYS: what the shell reports for a process the filter killed.
const KILLED_BY_SIGSYS: i32 = 128 + 31;

fn with_seccomp(c: &mut Value, profile: Value) {
    c["linux"]["seccomp"] = profile;
}

/// The engines' default profile (containers-common), as podman hands it to a runtime.
fn default_profile() -> Value {
    serde_json::from_str(include_str!("data/containers-seccomp.oci.json")).unwrap()
}

// ---------------------------------------------------------------------------------------
// the probe

fn probe_binary() -> Option<&'static Path> {
    static PROBE: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/data/probe.c");
            let out = base_dir().join("probe");
            let st = Command::new("gcc")
                .args([
                    "-static",
                    "-nostdlib",
                    "-O2",
                    "-fno-stack-protector",
                    "-fno-pie",
                ])
                .args(["-no-pie", "-o"])
                .arg(&out)
                .arg(&src)
                .status();
            match st {
                Ok(s) if s.success() => Some(out),
                _ => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "gcc could not build {}",
                        src.display()
                    );
                    eprintln!("skipped: gcc could not build the probe");
                    None
                }
            }
        })
        .as_deref()
}

/// Run `script` (which may call /bin/probe) in a container with `profile`.
fn run_probe(t: &Env, profile: Value, script: &str) -> Option<crate::common::Out> {
    let probe = probe_binary()?;
    let b = t.bundle_own_rootfs(
        |root| {
            fs::copy(probe, root.join("bin/probe")).unwrap();
        },
        |c| {
            c["process"]["args"] = json!(["sh", "-c", script]);
            with_seccomp(c, profile);
        },
    );
    let id = t.id("probe");
    Some(t.run(&b, &id))
}

/// Lines of the probe's output as numbers (`-1` for EPERM and so on).
fn numbers(out: &crate::common::Out) -> Vec<i64> {
    out.stdout
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {l:?}\n{out}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// actions

#[test]
fn each_action_as_the_process_sees_it() {
    let Some(t) = Env::new("seccomp-actions") else {
        return;
    };
    // mkdir's fate under each action, seen by the shell: its message and exit status.
    let cases: &[(Value, &str, i32)] = &[
        (
            json!({"action": "SCMP_ACT_ERRNO"}),
            "Operation not permitted",
            1,
        ),
        (
            json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 28}),
            "No space left on device",
            1,
        ),
        // TRACE with no tracer attached: the kernel answers ENOSYS.
        (
            json!({"action": "SCMP_ACT_TRACE"}),
            "Function not implemented",
            1,
        ),
        (json!({"action": "SCMP_ACT_KILL"}), "", KILLED_BY_SIGSYS),
        (
            json!({"action": "SCMP_ACT_KILL_THREAD"}),
            "",
            KILLED_BY_SIGSYS,
        ),
        (
            json!({"action": "SCMP_ACT_KILL_PROCESS"}),
            "",
            KILLED_BY_SIGSYS,
        ),
        (json!({"action": "SCMP_ACT_TRAP"}), "", KILLED_BY_SIGSYS),
        (json!({"action": "SCMP_ACT_LOG"}), "", 0),
        (json!({"action": "SCMP_ACT_ALLOW"}), "", 0),
    ];
    for (rule, message, status) in cases {
        let mut rule = rule.clone();
        rule["names"] = json!(["mkdir", "mkdirat"]);
        let out = t.run_sh("mkdir /dev/shm/d 2>&1; echo status=$?", |c| {
            with_seccomp(
                c,
                json!({"defaultAction": if rule["action"] == "SCMP_ACT_ALLOW" { "SCMP_ACT_LOG" } else { "SCMP_ACT_ALLOW" },
                       "syscalls": [rule]}),
            )
        });
        out.ok();
        assert!(
            out.stdout.contains(message),
            "{rule}: expected {message:?}\n{out}"
        );
        assert!(
            out.stdout.contains(&format!("status={status}\n")),
            "{rule}: expected status {status}\n{out}"
        );
    }
}

#[test]
fn default_action_and_errno() {
    let Some(t) = Env::new("seccomp-default") else {
        return;
    };
    // An allowlist whose default gives EACCES; mkdir is not in it.
    let mut profile = default_profile();
    profile["defaultErrnoRet"] = json!(13);
    for s in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = s["names"].as_array_mut() {
            names.retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    let out = t.run_sh("mkdir /dev/shm/d 2>&1; echo status=$?", |c| {
        with_seccomp(c, profile)
    });
    out.ok();
    assert!(out.stdout.contains("Permission denied"), "{out}");
    assert!(out.stdout.contains("status=1"), "{out}");
}

#[test]
fn filter_is_in_the_process_and_its_exec_children() {
    let Some(t) = Env::new("seccomp-status") else {
        return;
    };
    // The shell's own status, then that of grep, which it forks and execs.
    let script = "grep '^Seccomp:' /proc/$$/status; grep '^Seccomp:' /proc/self/status";
    let out = t.run_sh(script, |c| with_seccomp(c, default_profile()));
    out.ok();
    assert_eq!(out.stdout, "Seccomp:\t2\nSeccomp:\t2\n", "{out}");
    let out = t.run_sh(script, |c| {
        c["linux"].as_object_mut().unwrap().remove("seccomp");
    });
    out.ok();
    assert_eq!(out.stdout, "Seccomp:\t0\nSeccomp:\t0\n", "{out}");
}

#[test]
fn default_profile_runs_busybox() {
    let Some(t) = Env::new("seccomp-busybox") else {
        return;
    };
    let script = "set -e; mkdir -p /dev/shm/a/b; echo hello > /dev/shm/a/b/f; cat /dev/shm/a/b/f; \
                  cp /dev/shm/a/b/f /dev/shm/g; mv /dev/shm/g /dev/shm/h; rm -r /dev/shm/a; ls / > /dev/null; \
                  ps > /dev/null; id -u; date +%Y > /dev/null; sleep 0.1 & wait; \
                  echo $(( 6 * 7 )); sort < /etc/passwd | head -n 1 > /dev/null; \
                  find /etc -name passwd; echo done";
    let out = t.run_sh(script, |c| with_seccomp(c, default_profile()));
    out.ok();
    assert_eq!(out.stdout, "hello\n0\n42\n/etc/passwd\ndone\n", "{out}");
}

#[test]
fn default_profile_blocks_and_answers_newer_calls_enosys() {
    let Some(t) = Env::new("seccomp-default-probe") else {
        return;
    };
    // kexec_load: blocked by an EPERM rule; add_key: not named, so the default (ENOSYS);
    // getpid: allowed. With defaultErrnoRet unset (EPERM), a number above every named one
    // answers ENOSYS (runc's rule), one below EPERM.
    let script = "probe 64 246; probe 64 248; probe 64 39 >/dev/null && echo ok";
    let Some(out) = run_probe(&t, default_profile(), script) else {
        return;
    };
    out.ok();
    assert_eq!(out.stdout, format!("-{EPERM}\n-{ENOSYS}\nok\n"), "{out}");

    let mut p = default_profile();
    p.as_object_mut().unwrap().remove("defaultErrnoRet");
    let Some(out) = run_probe(&t, p, "probe 64 248; probe 64 600; probe 32 600") else {
        return;
    };
    out.ok();
    assert_eq!(numbers(&out), vec![-EPERM, -ENOSYS, -ENOSYS], "{out}");
}

// ---------------------------------------------------------------------------------------
// operators, on full 64-bit values

#[test]
fn each_operator_on_64_bit_arguments() {
    let Some(t) = Env::new("seccomp-operators") else {
        return;
    };
    // getppid ignores its arguments; the filter does not. EPERM when the rule matches.
    let v: u64 = 0x1_8000_0000;
    let probes = [v - 1, v, v + 1, 0x8000_0000, 0x2_8000_0000, 0x2_0000_0000];
    type Pred = fn(u64, u64) -> bool;
    let ops: [(&str, Pred); 6] = [
        ("SCMP_CMP_NE", |a, b| a != b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
        ("SCMP_CMP_EQ", |a, b| a == b),
        ("SCMP_CMP_GE", |a, b| a >= b),
        ("SCMP_CMP_GT", |a, b| a > b),
    ];
    let mut script = String::new();
    for p in probes {
        script.push_str(&format!("probe 64 110 0 0 {p:#x}; "));
    }
    for (op, f) in ops {
        let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": v, "op": op}]}]});
        let Some(out) = run_probe(&t, profile, &script) else {
            return;
        };
        out.ok();
        let got: Vec<bool> = numbers(&out).iter().map(|r| *r == -EPERM).collect();
        let want: Vec<bool> = probes.iter().map(|p| f(*p, v)).collect();
        assert_eq!(got, want, "{op} {v:#x} on {probes:x?}\n{out}");
    }
    // MASKED_EQ, a mask over both halves; and two args ANDed.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 0xff00_0000_00ffu64, "valueTwo": 0x1200_0000_0034u64, "op": "SCMP_CMP_MASKED_EQ"},
            {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}]});
    let script = "probe 64 110 0x12abcdef0034 7; probe 64 110 0x12abcdef0035 7; \
                  probe 64 110 0x13abcdef0034 7; probe 64 110 0x12abcdef0034 8";
    let Some(out) = run_probe(&t, profile, script) else {
        return;
    };
    out.ok();
    let got: Vec<bool> = numbers(&out).iter().map(|r| *r == -EPERM).collect();
    assert_eq!(got, vec![true, false, false, false], "{out}");
}

// ---------------------------------------------------------------------------------------
// architectures

#[test]
fn blocklist_is_not_bypassed_through_int_0x80_or_x32() {
    let Some(t) = Env::new("seccomp-arches") else {
        return;
    };
    // getppid is 110 on x86_64 and x32, 64 on i386; getpid 39 and 20.
    let script = "probe 64 110; probe 32 64; probe x32 110; probe 32 20 >/dev/null && echo ok";
    let all = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]});
    let Some(out) = run_probe(&t, all, script) else {
        return;
    };
    out.ok();
    // x32: EPERM from the filter, not the ENOSYS of a kernel without x32.
    assert_eq!(
        out.stdout,
        format!("-{EPERM}\n-{EPERM}\n-{EPERM}\nok\n"),
        "{out}"
    );

    // Only x86_64 listed: the other two are killed, not let through.
    for (call, what) in [("probe 32 64", "int 0x80"), ("probe x32 110", "x32")] {
        let only = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]});
        let Some(out) = run_probe(&t, only, &format!("probe 64 110; {call}; echo status=$?"))
        else {
            return;
        };
        out.ok();
        assert_eq!(
            out.stdout,
            format!("-{EPERM}\nstatus={KILLED_BY_SIGSYS}\n"),
            "{what}\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// SCMP_ACT_NOTIFY

/// The kernel's `struct seccomp_notif` and `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}
const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)

/// Receive the agent message: the JSON and the notify fd.
fn receive(listener: &UnixListener) -> (Value, OwnedFd) {
    let (conn, _) = listener.accept().expect("berth connects to the agent");
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg from berth");
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
            fds.extend(f);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "one fd, the notify fd");
    let v: Value = serde_json::from_slice(&buf[..n]).expect("the state is JSON");
    // SAFETY: SCM_RIGHTS just gave us this fd.
    (v, unsafe { OwnedFd::from_raw_fd(fds[0]) })
}

/// Answer notifications until `stop`: the first with EROFS, the rest with success (0)
/// without running the call. Returns the numbers of the calls seen.
fn answer(fd: &OwnedFd, stop: &AtomicBool) -> Vec<i32> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, for the duration of the call.
        if unsafe { libc::poll(&mut p, 1, 50) } <= 0 || p.revents & libc::POLLIN == 0 {
            if p.revents & libc::POLLHUP != 0 {
                break;
            }
            continue;
        }
        let mut n = Notif::default();
        // SAFETY: NOTIF_RECV fills a zeroed seccomp_notif of the right size.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n) } != 0 {
            continue;
        }
        seen.push(n.nr);
        let r = NotifResp {
            id: n.id,
            val: 0,
            error: if seen.len() == 1 { -libc::EROFS } else { 0 },
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &r) };
    }
    seen
}

#[test]
fn notify_fd_reaches_the_agent_which_answers_calls() {
    let Some(t) = Env::new("seccomp-notify") else {
        return;
    };
    let sock = t.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (state, fd) = receive(&listener);
            let seen = answer(&fd, &stop);
            (state, seen)
        })
    };
    let b = t.bundle(|c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "mkdir /dev/shm/x 2>&1; echo status=$?; mkdir /dev/shm/y && echo made; test -d /dev/shm/y || echo absent"
        ]);
        c["annotations"] = json!({"org.example.test": "notify"});
        with_seccomp(
            c,
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock.to_str().unwrap(),
                "listenerMetadata": "agent-metadata",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
    });
    let id = t.id("notify");
    let out = t.run(&b, &id);
    stop.store(true, Ordering::Relaxed);
    let (state, seen) = agent
        .join()
        .unwrap_or_else(|_| panic!("the agent failed\n{out}"));
    out.ok();
    assert_eq!(
        out.stdout,
        "mkdir: can't create directory '/dev/shm/x': Read-only file system\nstatus=1\nmade\nabsent\n",
        "{out}"
    );
    assert_eq!(seen.len(), 2, "two mkdir calls notified: {seen:?}");
    // runc's ContainerProcessState.
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "agent-metadata", "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
    let pid = state["pid"].as_i64().unwrap_or(0);
    assert!(pid > 1, "the init's host pid: {state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert_eq!(state["state"]["pid"], pid, "{state}");
    assert_eq!(state["state"]["bundle"], b.path(), "{state}");
    assert_eq!(
        state["state"]["annotations"]["org.example.test"], "notify",
        "{state}"
    );
}

#[test]
fn bad_profiles_fail_create_naming_the_field() {
    let Some(t) = Env::new("seccomp-errors") else {
        return;
    };
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "config.json linux.seccomp.syscalls[0].args[0].index: 6 is not a system call argument",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "config.json linux.seccomp.listenerPath: connect to the seccomp agent at /nonexistent/agent.sock",
        ),
    ];
    for (profile, want) in cases {
        let b = t.bundle(|c| with_seccomp(c, profile));
        let id = t.id("bad");
        t.create(&b, &id, &[]).fails_with(want);
    }
}
