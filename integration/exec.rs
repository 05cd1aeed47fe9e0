//! `berth exec`: a new process in a running container, seen from inside it: the
//! container's pid 1, hostname and namespaces; the init's capabilities, no_new_privs,
//! seccomp filter and rlimits; exit codes and signals; the flags (--detach, --pid-file,
//! --env, --cwd, --user, -g, --cap, --no-new-privs, --process, --tty, --preserve-fds);
//! and that no berth binary is ever reachable from the container while it joins
//! (CVE-2019-5736).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{BERTH, Env, Out, alive, reap, wait_until};
use crate::process::{
    CapSet, ConsoleReceiver, SELF_STATUS, berth_bin_with_fds, berth_with_fds, cap_sets, caps,
    fd_list, fd_script, host_bounding, open_fd, status_fields,
};

/// A running container whose init is `sleep 1000`; its id and the init's host pid.
fn running(t: &Env, edit: impl FnOnce(&mut Value)) -> (String, i32) {
    let b = t.bundle(|c| {
        c["process"]["args"] = json!(["sleep", "1000"]);
        edit(c);
    });
    let id = t.id("exec");
    t.run_detached(&b, &id);
    let pid = t.state(&id)["pid"].as_i64().unwrap() as i32;
    (id, pid)
}

/// `berth exec [flags…] ID sh -c script`.
fn exec_sh(t: &Env, id: &str, flags: &[&str], script: &str) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[id, "sh", "-c", script]);
    t.berth(&args)
}

fn ns_link(pid: i32, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A seccomp profile that lets everything through but mkdir, which gets EPERM.
fn no_mkdir() -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
}

/// Every capability this host has, for containers that must be able to ptrace.
fn all_host_caps(c: &mut Value) {
    let all: Vec<&str> = host_bounding().into_iter().collect();
    c["process"]["capabilities"] = json!({
        "bounding": all, "effective": all, "permitted": all,
    });
    c["process"]["noNewPrivileges"] = json!(false);
}

/// `berth exec -d --pid-file F [flags…] ID args…` (with the berth at `bin`): its output
/// and the exec'd process's host pid.
fn exec_detached(t: &Env, bin: &Path, id: &str, flags: &[&str], args: &[&str]) -> (Out, i32) {
    let pid_file = t.dir.join(format!("exec-{}.pid", t.id("pidfile")));
    let mut a = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
    a.extend_from_slice(flags);
    a.push(id);
    a.extend_from_slice(args);
    let out = berth_bin_with_fds(t, bin, &a, &[], &[]);
    out.ok();
    let pid = fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("no pid file: {e}\n{out}"))
        .trim()
        .parse()
        .unwrap();
    (out, pid)
}

/// `delete --force`, reaping meanwhile the detached exec'd processes, which are our
/// children (we are their subreaper): the kernel ends a pid namespace, and so the init,
/// only once every process of it has been reaped.
fn delete_reaping(t: &Env, id: &str, pids: &[i32]) {
    let del = t.spawn(&["delete", "--force", id]);
    for p in pids {
        reap(*p, Duration::from_secs(10));
    }
    del.wait(Duration::from_secs(20)).ok();
    for p in pids {
        assert!(!alive(*p), "exec'd process {p} outlived its container");
    }
}

// ---------------------------------------------------------------------------------------
// what the process joins

#[test]
fn exec_sees_the_containers_pid_1_hostname_and_namespaces() {
    let Some(t) = Env::new("exec_sees") else {
        return;
    };
    let (id, init) = running(&t, |c| c["hostname"] = json!("exec-host"));
    let script = "cat /proc/1/comm; hostname; echo $$; \
                  for n in cgroup ipc mnt net pid time user uts; do echo $n $(readlink /proc/$$/ns/$n); done";
    let out = exec_sh(&t, &id, &[], script);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "sleep", "pid 1 is the container's init\n{out}");
    assert_eq!(lines[1], "exec-host", "{out}");
    assert_ne!(lines[2], "1", "{out}");
    let n: i32 = lines[2].parse().unwrap();
    assert!(
        n > 1 && n < 100,
        "a pid of the container's namespace: {n}\n{out}"
    );
    for l in &lines[3..] {
        let (name, link) = l.split_once(' ').unwrap();
        assert_eq!(
            link,
            ns_link(init, name),
            "{name}: the exec'd process is in the init's\n{out}"
        );
    }
    assert_eq!(lines.len(), 11, "{out}");
}

#[test]
fn exec_joins_the_containers_cgroup() {
    let Some(t) = Env::new("exec_cgroup") else {
        return;
    };
    let (id, init) = running(&t, |_| {});
    let (_, pid) = exec_detached(&t, Path::new(BERTH), &id, &[], &["sleep", "1000"]);
    let cg = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    let (ours, theirs) = (cg(pid), cg(init));
    delete_reaping(&t, &id, &[pid]);
    assert_eq!(
        ours, theirs,
        "the exec'd process must be in every cgroup of the init"
    );
}

#[test]
fn exec_joins_the_user_namespace() {
    let Some(t) = Env::new("exec_userns") else {
        return;
    };
    let (id, init) = running(&t, |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    for (user, want) in [(None, "0"), (Some("1000:1000"), "1000")] {
        let mut flags = Vec::new();
        if let Some(u) = user {
            flags.extend(["--user", u]);
        }
        let out = exec_sh(
            &t,
            &id,
            &flags,
            "cat /proc/self/uid_map; id -u; readlink /proc/$$/ns/user",
        );
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let map: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(map, ["0", "100000", "65536"], "{out}");
        assert_eq!(lines[1], want, "{out}");
        assert_eq!(lines[2], ns_link(init, "user"), "{out}");
    }
}

#[test]
fn exec_has_the_inits_capabilities_no_new_privs_seccomp_and_rlimits() {
    let Some(t) = Env::new("exec_same") else {
        return;
    };
    let script = format!(
        "{SELF_STATUS}; echo init:; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/1/status; \
         echo limits $(ulimit -n) $(ulimit -Hn); mkdir /dev/shm/x 2>&1; echo mkdir=$?"
    );
    for seccomp in [true, false] {
        let (id, _) = running(&t, |c| {
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "permitted": ["CAP_CHOWN", "CAP_KILL"],
            });
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
            if seccomp {
                c["linux"]["seccomp"] = no_mkdir();
            }
        });
        let out = exec_sh(&t, &id, &[], &script);
        out.ok();
        let (own, init) = out.stdout.split_once("init:\n").unwrap();
        let (own_f, init_f) = (status_fields(own), status_fields(init));
        for k in [
            "CapInh",
            "CapPrm",
            "CapEff",
            "CapBnd",
            "CapAmb",
            "NoNewPrivs",
            "Seccomp",
        ] {
            assert_eq!(
                own_f.get(k),
                init_f.get(k),
                "{k}: exec'd process vs init, seccomp {seccomp}\n{out}"
            );
        }
        assert_eq!(
            cap_sets(own)["CapBnd"],
            caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"]),
            "{out}"
        );
        assert_eq!(own_f["NoNewPrivs"], "1", "{out}");
        assert!(out.stdout.contains("limits 777 888\n"), "{out}");
        if seccomp {
            assert_eq!(own_f["Seccomp"], "2", "{out}");
            assert!(out.stdout.contains("Operation not permitted"), "{out}");
            assert!(out.stdout.contains("mkdir=1\n"), "{out}");
        } else {
            assert_eq!(own_f["Seccomp"], "0", "{out}");
            assert!(out.stdout.contains("mkdir=0\n"), "{out}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// exit codes, signals, --detach

#[test]
fn exec_exit_code_is_propagated() {
    let Some(t) = Env::new("exec_codes") else {
        return;
    };
    let (id, init) = running(&t, |_| {});
    // (script, exit code of berth exec)
    let table = [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 255", 255),
        ("false", 1),
        ("echo out; echo err >&2; exit 42", 42),
        ("kill -9 $$", 137),
        ("kill -TERM $$", 143),
    ];
    for (script, want) in table {
        let out = exec_sh(&t, &id, &[], script);
        assert_eq!(out.code(), want, "{script}\n{out}");
        if want == 42 {
            assert_eq!(
                (out.stdout.as_str(), out.stderr.as_str()),
                ("out\n", "err\n")
            );
        }
    }
    let out = t.berth(&["exec", &id, "no-such-program"]);
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("executable file not found"), "{out}");
    assert!(alive(init), "the container survived its exec'd processes");
    assert_eq!(t.status(&id), "running");
}

#[test]
fn exec_in_the_foreground_forwards_signals() {
    let Some(t) = Env::new("exec_signals") else {
        return;
    };
    let (id, _) = running(&t, |_| {});
    let script = "trap 'echo usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready; \
                  while true; do sleep 0.05; done";
    let bg = t.spawn(&["exec", &id, "sh", "-c", script]);
    assert!(
        wait_until(Duration::from_secs(10), || bg
            .stdout_now()
            .contains("ready")),
        "{:?}",
        bg.stdout_now()
    );
    // SAFETY: kill(2) on the berth process this test spawned and has not reaped.
    unsafe { libc::kill(bg.pid(), libc::SIGUSR1) };
    assert!(
        wait_until(Duration::from_secs(10), || bg.stdout_now().contains("usr1")),
        "USR1 not forwarded: {:?}",
        bg.stdout_now()
    );
    // SAFETY: as above.
    unsafe { libc::kill(bg.pid(), libc::SIGTERM) };
    let out = bg.wait(Duration::from_secs(10));
    assert_eq!(out.code(), 7, "{out}");
    assert_eq!(out.stdout, "ready\nusr1\ngot-term\n", "{out}");
    assert_eq!(t.status(&id), "running");
}

#[test]
fn exec_detach_returns_while_the_process_runs() {
    let Some(t) = Env::new("exec_detach") else {
        return;
    };
    let (id, init) = running(&t, |_| {});
    let pid_file = t.dir.join("exec.pid");
    let began = Instant::now();
    let out = t.berth(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "echo detached-up; exec sleep 1000",
    ]);
    out.ok();
    assert!(began.elapsed() < Duration::from_secs(5));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 1 && pid != init, "a host pid: {pid}");
    assert!(
        wait_until(Duration::from_secs(10), || out
            .stdout_now()
            .contains("detached-up")),
        "{:?}",
        out.stdout_now()
    );
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(format!(
            "/proc/{pid}/comm"
        ))
        .is_ok_and(|c| c == "sleep\n")),
        "the pid file names the exec'd process"
    );
    assert!(alive(pid));
    assert_eq!(ns_link(pid, "pid"), ns_link(init, "pid"));
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().ends_with("busybox"),
        "the exec'd process is busybox, not berth: {exe:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "the detached process must keep running");
    // It dies with the container's pid namespace.
    delete_reaping(&t, &id, &[pid]);
}

// ---------------------------------------------------------------------------------------
// flags

#[test]
fn exec_env_and_cwd() {
    let Some(t) = Env::new("exec_env_cwd") else {
        return;
    };
    let (id, _) = running(&t, |c| {
        c["process"]["env"] = json!(["PATH=/bin", "KEEP=1", "OVER=old"]);
        c["process"]["cwd"] = json!("/etc");
    });
    let out = t.berth(&["exec", "--env", "OVER=new", "-e", "NEW=x y", &id, "env"]);
    out.ok();
    let mut env: Vec<&str> = out.stdout.lines().collect();
    env.sort_unstable();
    assert_eq!(env, ["KEEP=1", "NEW=x y", "OVER=new", "PATH=/bin"], "{out}");
    // Without flags: the container's own.
    let out = t.berth(&["exec", &id, "env"]);
    out.ok();
    let mut env: Vec<&str> = out.stdout.lines().collect();
    env.sort_unstable();
    assert_eq!(env, ["KEEP=1", "OVER=old", "PATH=/bin"], "{out}");

    for (flags, want) in [
        (&["--cwd", "/tmp"][..], "/tmp"),
        (&["--cwd", "/opt/masked-dir"], "/opt/masked-dir"),
        (&[], "/etc"),
    ] {
        let out = exec_sh(&t, &id, flags, "pwd -P");
        out.ok();
        assert_eq!(out.stdout, format!("{want}\n"), "{flags:?}\n{out}");
    }
    let out = exec_sh(&t, &id, &["--cwd", "tmp"], "echo ran");
    assert_ne!(out.code(), 0, "a relative cwd\n{out}");
    assert!(!out.stdout.contains("ran"), "{out}");
}

#[test]
fn exec_user_forms() {
    let Some(t) = Env::new("exec_user") else {
        return;
    };
    let (id, _) = running(&t, |_| {});
    // (--user, id -u, id -g)
    for (user, uid, gid) in [
        ("1", "1", "0"),
        ("1:2", "1", "2"),
        ("0", "0", "0"),
        ("65534", "65534", "0"),
        ("1000:1000", "1000", "1000"),
        ("4294967294:4294967294", "4294967294", "4294967294"),
    ] {
        let out = exec_sh(
            &t,
            &id,
            &[&format!("--user={user}")],
            "id -u; id -g; grep -E '^(Uid|Gid):' /proc/self/status",
        );
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!((lines[0], lines[1]), (uid, gid), "--user {user}\n{out}");
        let f = status_fields(&out.stdout);
        assert_eq!(f["Uid"].split_whitespace().collect::<Vec<_>>(), [uid; 4]);
        assert_eq!(f["Gid"].split_whitespace().collect::<Vec<_>>(), [gid; 4]);
    }
    // Refused before any process starts.
    for bad in [
        "-1",
        "4294967296",
        "4294967295",
        "abc",
        "1:",
        ":1",
        "",
        "1:2:3",
        "root",
        " 1",
    ] {
        let before = t.berth(&["ps", &id]).stdout;
        let out = exec_sh(&t, &id, &[&format!("--user={bad}")], "echo ran");
        assert_ne!(out.code(), 0, "--user {bad:?}\n{out}");
        assert!(out.stderr.contains("--user"), "--user {bad:?}\n{out}");
        assert!(!out.stdout.contains("ran"), "--user {bad:?} ran\n{out}");
        assert_eq!(
            t.berth(&["ps", &id]).stdout,
            before,
            "--user {bad:?} left a process"
        );
    }
}

#[test]
fn exec_additional_gids() {
    let Some(t) = Env::new("exec_gids") else {
        return;
    };
    let (id, _) = running(&t, |c| {
        c["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [7]})
    });
    let groups = |out: &Out| -> Vec<u32> {
        let mut v: Vec<u32> = status_fields(&out.stdout)["Groups"]
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    let script = "grep '^Groups:' /proc/self/status";
    let out = exec_sh(
        &t,
        &id,
        &["--user", "1000:1000", "-g", "10", "-g", "20"],
        script,
    );
    out.ok();
    assert_eq!(groups(&out), [10, 20], "{out}");
    // Without -g: the container's additionalGids.
    let out = exec_sh(&t, &id, &[], script);
    out.ok();
    assert_eq!(groups(&out), [7], "{out}");
}

#[test]
fn exec_cap_adds_to_effective_but_never_to_inheritable() {
    let Some(t) = Env::new("exec_cap") else {
        return;
    };
    // The default set (AUDIT_WRITE, KILL, NET_BIND_SERVICE) has no CAP_CHOWN.
    let (id, _) = running(&t, |_| {});
    let script = format!(
        "{SELF_STATUS}; touch /dev/shm/f$$; chown 2000 /dev/shm/f$$ 2>/dev/null && echo chown=ok || echo chown=denied; \
         echo init:; grep '^Cap' /proc/1/status"
    );
    let out = exec_sh(
        &t,
        &id,
        &["--cap", "CAP_CHOWN", "--cap", "CAP_NET_RAW"],
        &script,
    );
    out.ok();
    let (own, init) = out.stdout.split_once("init:\n").unwrap();
    let got = cap_sets(own);
    let added = caps(&["CAP_CHOWN", "CAP_NET_RAW"]);
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(got[k].is_superset(&added), "{k} must gain them\n{out}");
    }
    // CVE-2022-29162: nothing in inheritable or ambient.
    assert_eq!(got["CapInh"], CapSet::new(), "{out}");
    assert_eq!(got["CapAmb"], CapSet::new(), "{out}");
    assert!(own.contains("chown=ok"), "{out}");
    // The init is untouched.
    assert!(!cap_sets(init)["CapEff"].contains("CAP_CHOWN"), "{out}");

    // Control: without --cap, no CAP_CHOWN.
    let out = exec_sh(&t, &id, &[], &script);
    out.ok();
    let (own, _) = out.stdout.split_once("init:\n").unwrap();
    assert!(!cap_sets(own)["CapEff"].contains("CAP_CHOWN"), "{out}");
    assert!(own.contains("chown=denied"), "{out}");

    // As another user: inheritable still empty.
    let out = exec_sh(
        &t,
        &id,
        &["--user", "1000", "--cap", "CAP_CHOWN"],
        SELF_STATUS,
    );
    out.ok();
    assert_eq!(cap_sets(&out.stdout)["CapInh"], CapSet::new(), "{out}");
    assert_eq!(cap_sets(&out.stdout)["CapAmb"], CapSet::new(), "{out}");

    // Unknown or unavailable capabilities are refused.
    for bad in ["CAP_BOGUS", "CHOWNX"] {
        let out = exec_sh(&t, &id, &["--cap", bad], "echo ran");
        assert_ne!(out.code(), 0, "{out}");
        assert!(out.stderr.contains("--cap"), "{out}");
        assert!(!out.stdout.contains("ran"), "{out}");
    }
    if !host_bounding().contains("CAP_SYS_RESOURCE") {
        let out = exec_sh(&t, &id, &["--cap", "CAP_SYS_RESOURCE"], "echo ran");
        assert_ne!(out.code(), 0, "{out}");
        assert!(out.stderr.contains("CAP_SYS_RESOURCE"), "{out}");
        assert!(!out.stdout.contains("ran"), "{out}");
    }
}

#[test]
fn exec_no_new_privs() {
    let Some(t) = Env::new("exec_nnp") else {
        return;
    };
    let (id, _) = running(&t, |c| c["process"]["noNewPrivileges"] = json!(false));
    let script = "grep '^NoNewPrivs:' /proc/self/status";
    let out = exec_sh(&t, &id, &[], script);
    out.ok();
    assert_eq!(out.stdout, "NoNewPrivs:\t0\n", "{out}");
    let out = exec_sh(&t, &id, &["--no-new-privs"], script);
    out.ok();
    assert_eq!(out.stdout, "NoNewPrivs:\t1\n", "{out}");
}

#[test]
fn exec_process_file() {
    let Some(t) = Env::new("exec_process") else {
        return;
    };
    let (id, _) = running(&t, |c| c["linux"]["seccomp"] = no_mkdir());
    let file = t.dir.join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1234, "gid": 5678, "additionalGids": [9], "umask": 63},
        "args": ["sh", "-c", format!("id -u; id -g; pwd; echo $FOO; umask; {SELF_STATUS}; \
                 mkdir /dev/shm/d 2>&1; ulimit -n")],
        "env": ["FOO=from-process-json", "PATH=/bin"],
        "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 321}],
        "noNewPrivileges": true,
    });
    fs::write(&file, process.to_string()).unwrap();
    let out = t.berth(&["exec", "--process", file.to_str().unwrap(), &id]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        ["1234", "5678", "/tmp", "from-process-json", "0077"],
        "{out}"
    );
    let f = status_fields(&out.stdout);
    assert_eq!(
        cap_sets(&out.stdout)["CapBnd"],
        caps(&["CAP_KILL"]),
        "{out}"
    );
    assert_eq!(f["NoNewPrivs"], "1", "{out}");
    // The container's seccomp filter applies to a --process process too.
    assert_eq!(f["Seccomp"], "2", "{out}");
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert_eq!(lines.last().copied(), Some("321"), "{out}");

    // Bad files: a clear error naming the file, nothing run.
    let missing = t.dir.join("missing.json");
    let bad = t.dir.join("bad.json");
    fs::write(&bad, "{ not json").unwrap();
    let noargs = t.dir.join("noargs.json");
    fs::write(
        &noargs,
        json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": []}).to_string(),
    )
    .unwrap();
    for (f, phrase) in [
        (&missing, "missing.json"),
        (&bad, "bad.json"),
        (&noargs, "args"),
    ] {
        let before = t.berth(&["ps", &id]).stdout;
        let out = t.berth(&["exec", "--process", f.to_str().unwrap(), &id]);
        assert_ne!(out.code(), 0, "{out}");
        assert!(out.stderr.contains(phrase), "{phrase}\n{out}");
        assert_eq!(t.berth(&["ps", &id]).stdout, before);
    }
}

#[test]
fn exec_tty_over_console_socket() {
    let Some(t) = Env::new("exec_tty") else {
        return;
    };
    let (id, _) = running(&t, |_| {});
    let rx = ConsoleReceiver::new(&t.dir);
    let script = "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; echo fds:; ls -1 /proc/$$/fd; echo end";
    let out = exec_sh(&t, &id, &["--tty", "--console-socket", rx.sock()], script);
    let got = rx.finish();
    out.ok();
    let (payload, text) = got.unwrap_or_else(|e| panic!("{e}\n{out}"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{text:?}");
    assert_eq!(payload, lines[0], "the name sent with the master");
    assert_eq!(lines[1], "all-ttys", "{text:?}");
    assert_eq!(fd_list(&text), [0, 1, 2], "{text:?}");
    assert_eq!(out.stdout, "", "{out}");

    // With --process: its consoleSize.
    let rx = ConsoleReceiver::new(&t.dir);
    let file = t.dir.join("tty-process.json");
    fs::write(
        &file,
        json!({"terminal": true, "consoleSize": {"height": 30, "width": 90},
               "user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["PATH=/bin"],
               "args": ["sh", "-c", "tty; stty size"]})
        .to_string(),
    )
    .unwrap();
    let out = t.berth(&[
        "exec",
        "--console-socket",
        rx.sock(),
        "--process",
        file.to_str().unwrap(),
        &id,
    ]);
    let got = rx.finish();
    out.ok();
    let (_, text) = got.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(text.lines().nth(1), Some("30 90"), "{text:?}");

    // --tty without a socket to send it to.
    let out = exec_sh(&t, &id, &["--tty"], "echo ran");
    out.fails_with("console-socket");
    assert!(!out.stdout.contains("ran"));
}

#[test]
fn exec_preserve_fds() {
    let Some(t) = Env::new("exec_fds") else {
        return;
    };
    let (id, _) = running(&t, |_| {});
    let write = |name: &str| {
        let p = t.dir.join(name);
        fs::write(&p, format!("content-of-{name}")).unwrap();
        open_fd(&p)
    };
    // (--preserve-fds, fds the process has, fds read back)
    for (n, want, read) in [
        ("0", &[0u32, 1, 2][..], &[][..]),
        ("1", &[0, 1, 2, 3], &[3]),
        ("2", &[0, 1, 2, 3, 4], &[3, 4]),
    ] {
        let (a, b, c) = (write("a"), write("b"), write("c"));
        let out = berth_with_fds(
            &t,
            &[
                "exec",
                "--preserve-fds",
                n,
                &id,
                "sh",
                "-c",
                &fd_script(read),
            ],
            &[(&a, 3), (&b, 4), (&c, 8)],
            &[],
        );
        out.ok();
        assert_eq!(fd_list(&out.stdout), want, "--preserve-fds {n}\n{out}");
        for (fd, name) in read.iter().zip(["a", "b"]) {
            assert!(
                out.stdout.contains(&format!("fd{fd}=content-of-{name}\n")),
                "{out}"
            );
        }
    }
}

#[test]
fn exec_in_a_stopped_or_missing_container_fails() {
    let Some(t) = Env::new("exec_stopped") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["true"]));
    let id = t.id("stopped");
    t.run_detached(&b, &id);
    t.wait_status(&id, "stopped");
    let out = t.leaves_nothing(&id, || exec_sh(&t, &id, &[], "echo ran"));
    out.fails_with("stopped");
    assert!(out.stderr.contains(&id), "{out}");
    assert!(!out.stdout.contains("ran"));
    let missing = t.id("missing");
    let out = t.leaves_nothing(&missing, || exec_sh(&t, &missing, &[], "echo ran"));
    out.fails_with("does not exist");
    assert_eq!(out.stdout, "");
    // No command at all.
    let (id, _) = running(&t, |_| {});
    t.berth(&["exec", &id]).fails_with("no command");
}

#[test]
fn exec_lsm_flags_on_a_host_without_the_lsm_are_refused() {
    let Some(t) = Env::new("exec_lsm") else {
        return;
    };
    let (id, _) = running(&t, |_| {});
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if !apparmor {
        let out = exec_sh(&t, &id, &["--apparmor", "berth-test-profile"], "echo ran");
        assert_ne!(
            out.code(),
            0,
            "an AppArmor profile cannot be applied here\n{out}"
        );
        assert!(out.stderr.contains("AppArmor"), "{out}");
        assert!(!out.stdout.contains("ran"), "{out}");
    }
    if !selinux {
        let out = exec_sh(
            &t,
            &id,
            &["--process-label", "system_u:system_r:container_t:s0"],
            "echo ran",
        );
        assert_ne!(
            out.code(),
            0,
            "an SELinux label cannot be applied here\n{out}"
        );
        assert!(out.stderr.contains("SELinux"), "{out}");
        assert!(!out.stdout.contains("ran"), "{out}");
    }
}

// ---------------------------------------------------------------------------------------
// CVE-2019-5736: the berth binary is never reachable from inside

/// Capability sets a container may be given: the default, `--cap-add SYS_PTRACE` (common
/// for debugging), and everything (`--privileged`).
type ConfigEdit = fn(&mut Value);

fn cap_cases() -> Vec<(&'static str, ConfigEdit)> {
    vec![
        ("default capabilities", |_| {}),
        ("default + CAP_SYS_PTRACE", |c| {
            let caps = json!([
                "CAP_AUDIT_WRITE",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_PTRACE"
            ]);
            c["process"]["capabilities"] = json!({
                "bounding": caps, "effective": caps, "permitted": caps,
            });
        }),
        ("every capability", all_host_caps),
    ]
}

#[test]
fn created_containers_init_exe_is_unreachable_from_an_exec() {
    let Some(t) = Env::new("exec_created") else {
        return;
    };
    // While created, the init is berth itself, waiting: its /proc/1/exe is the host binary.
    let script = "readlink /proc/$$/exe; echo self=$?; readlink /proc/1/exe; echo init=$?; \
                  cat /proc/1/exe > /dev/null 2>&1; echo open=$?; \
                  echo x 2>/dev/null >> /proc/1/exe; echo write=$?; true";
    let mut failures = Vec::new();
    for (case, edit) in cap_cases() {
        let b = t.bundle(|c| {
            c["process"]["args"] = json!(["sleep", "1000"]);
            edit(c);
        });
        let id = t.id("created");
        t.create_ok(&b, &id);
        let out = exec_sh(&t, &id, &[], script);
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        // Control: readlink works on the exec'd process's own exe.
        assert_eq!(lines[..2], ["/bin/busybox", "self=0"], "{case}\n{out}");
        // Either the link cannot be followed at all (non-dumpable), or it leads to a view
        // of berth that no one can write (src/exeseal.rs: read-only overlay or sealed
        // memfd). The binary's own hash is checked by berth_binary_cannot_be_overwritten.
        let unreachable = out.stdout.contains("\ninit=1\n") && out.stdout.contains("\nopen=1\n");
        let unwritable = out.stdout.contains("\nwrite=1\n");
        if !(unreachable || unwritable) {
            failures.push(format!("{case}:\n{}", out.stdout));
        }
        assert_eq!(t.status(&id), "created");
        t.berth(&["delete", "--force", &id]).ok();
    }
    assert!(
        failures.is_empty(),
        "/proc/1/exe of a created container (the waiting berth) was readable from an exec:\n{}",
        failures.join("\n")
    );
}

#[test]
fn no_berth_binary_appears_in_the_container_during_execs() {
    let Some(t) = Env::new("exec_watch") else {
        return;
    };
    let mut failures = Vec::new();
    for (case, edit) in cap_cases() {
        let (id, _) = running(&t, edit);
        // A watcher reads every /proc/*/exe for 3 s while execs join.
        // Each line: the link, then the type of the filesystem it leads to.
        let watcher = "end=$(( $(date +%s) + 3 )); n=0; \
                       while [ $(date +%s) -lt $end ]; do for p in /proc/[0-9]*; do \
                       echo \"$(readlink $p/exe) $(stat -L -f -c %T $p/exe 2>/dev/null)\"; \
                       done; n=$((n+1)); done; echo rounds=$n";
        let (w, wpid) = exec_detached(&t, Path::new(BERTH), &id, &[], &["sh", "-c", watcher]);
        let began = Instant::now();
        let mut n = 0;
        while began.elapsed() < Duration::from_secs(2) {
            exec_sh(&t, &id, &[], "true").ok();
            n += 1;
        }
        assert!(
            wait_until(Duration::from_secs(10), || w
                .stdout_now()
                .contains("rounds=")),
            "the watcher did not finish"
        );
        reap(wpid, Duration::from_secs(5));
        let seen = w.stdout_now();
        assert!(
            seen.contains("/bin/busybox"),
            "the watcher saw nothing: {seen}"
        );
        // berth may show only through its unwritable view (src/exeseal.rs: a read-only
        // overlayfs whose root is the binary's directory, seen as "/berth", or a sealed
        // memfd); the host binary, by its host path, never. That the view cannot be
        // written is berth_binary_cannot_be_overwritten_from_a_container.
        let host = |link: &str| link.trim_end_matches(" (deleted)") == BERTH;
        let bad = seen
            .lines()
            .filter(|l| host(l.rsplit_once(' ').map_or(l, |x| x.0)))
            .count();
        if bad > 0 {
            failures.push(format!(
                "{case}: {bad} sightings of {BERTH} during {n} execs"
            ));
        }
        t.berth(&["delete", "--force", &id]).ok();
    }
    assert!(
        failures.is_empty(),
        "the berth binary showed in /proc/*/exe inside the container: {failures:?}"
    );
}

#[test]
fn berth_binary_cannot_be_overwritten_from_a_container() {
    let Some(t) = Env::new("exec_overwrite") else {
        return;
    };
    // The attack of CVE-2019-5736 against a copy of berth (the test loses only the copy):
    // a process of the container opens /proc/<pid>/exe of a berth process, keeps the fd,
    // and once no berth runs any more, writes to the binary through /proc/self/fd/N.
    let copy = t.dir.join("berth-copy");
    fs::copy(BERTH, &copy).unwrap();
    let original = fs::read(&copy).unwrap();
    let mut failures = Vec::new();
    for (case, edit) in cap_cases() {
        let b = t.bundle(|c| {
            c["process"]["args"] = json!(["sleep", "1000"]);
            edit(c);
        });
        let id = t.id("victim");
        berth_bin_with_fds(&t, &copy, &["create", "--bundle", b.path(), &id], &[], &[]).ok();
        // Pid 1 is berth (the copy), waiting for start: hold its exe open.
        let (_, holder) = exec_detached(
            &t,
            &copy,
            &id,
            &[],
            &["sh", "-c", "exec 3</proc/1/exe; exec sleep 999"],
        );
        berth_bin_with_fds(&t, &copy, &["start", &id], &[], &[]).ok();
        // A second later no berth process runs: write through the held fd.
        let writer = "sleep 1; for p in /proc/[0-9]*; do \
                      [ \"$(tr '\\0' ' ' < $p/cmdline)\" = 'sleep 999 ' ] && h=${p#/proc/}; done; \
                      echo h=$h; echo PWNED >> /proc/$h/fd/3; echo write=$?";
        let (w, wpid) = exec_detached(&t, &copy, &id, &[], &["sh", "-c", writer]);
        assert!(
            wait_until(Duration::from_secs(10), || w
                .stdout_now()
                .contains("write=")),
            "{case}: the writer did not finish: {:?}",
            w.stdout_now()
        );
        reap(wpid, Duration::from_secs(5));
        let now = fs::read(&copy).unwrap();
        if now != original {
            failures.push(format!(
                "{case}: the berth binary was changed ({} bytes, was {}); writer said {:?}",
                now.len(),
                original.len(),
                w.stdout_now()
            ));
            fs::write(&copy, &original).unwrap();
        }
        delete_reaping(&t, &id, &[holder]);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
