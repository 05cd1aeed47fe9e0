//! The container's process, field by field of config.json `process` and `linux`, as the
//! process itself sees it: the Cap*/NoNewPrivs lines of its /proc status, `ulimit`,
//! `umask`, oom_score_adj, /proc/sys, /proc/self/ns/*, /proc/uptime, `uname -m`, its
//! scheduling policy, I/O priority and CPU affinity, its open fds, its cwd and its terminal.
//! Every bad value fails with the config.json field named and nothing left behind.
//!
//! Helpers shared with `exec`: [`berth_with_fds`] (a berth command holding extra fds, as
//! systemd or containerd hand them), [`ConsoleReceiver`] (runc's recvtty: the pty master
//! over SCM_RIGHTS) and the capability decoding.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{BERTH, Bundle, DEADLINE, Env, Out, add_mount, drop_namespace, wait_until};

// ---------------------------------------------------------------------------------------
// helpers

/// Capability names by bit number (include/uapi/linux/capability.h).
pub(crate) const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub(crate) type CapSet = BTreeSet<&'static str>;

/// A hex mask of a /proc status Cap* line, decoded bit by bit.
pub(crate) fn decode_caps(hex: &str) -> CapSet {
    let mask = u64::from_str_radix(hex.trim(), 16)
        .unwrap_or_else(|_| panic!("not a capability mask: {hex:?}"));
    let mut out = CapSet::new();
    for bit in 0..64 {
        if mask & (1 << bit) != 0 {
            let name = CAP_NAMES
                .get(bit)
                .unwrap_or_else(|| panic!("capability bit {bit} unknown to the test"));
            out.insert(name);
        }
    }
    out
}

pub(crate) fn caps(names: &[&'static str]) -> CapSet {
    names.iter().copied().collect()
}

/// The bounding set of the test process (berth's own, so the host's).
pub(crate) fn host_bounding() -> CapSet {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    decode_caps(&status_fields(&status)["CapBnd"])
}

/// `Key:\tvalue` lines (of /proc/<pid>/status, or as the shell loop prints them) by key.
pub(crate) fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Shell text printing the shell's own Cap*, NoNewPrivs and Seccomp lines: `read` is a
/// builtin, so /proc/self is the shell, the program berth exec'd, not a child of it.
pub(crate) const SELF_STATUS: &str = "while read -r k v; do case $k in \
     Cap*|NoNewPrivs:|Seccomp:) echo \"$k $v\";; esac; done < /proc/self/status";

/// The five sets of a status text, decoded.
pub(crate) fn cap_sets(text: &str) -> BTreeMap<&'static str, CapSet> {
    let f = status_fields(text);
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .into_iter()
        .map(|k| {
            let v = f
                .get(k)
                .unwrap_or_else(|| panic!("no {k} line in:\n{text}"));
            (k, decode_caps(v))
        })
        .collect()
}

static FDS_CMD: AtomicUsize = AtomicUsize::new(0);

/// Run `berth --root ROOT args…` with `fds` (source, target number) open in berth as
/// those numbers (not close-on-exec) and `env` added, to completion.
pub(crate) fn berth_with_fds(
    t: &Env,
    args: &[&str],
    fds: &[(&OwnedFd, RawFd)],
    env: &[(&str, &str)],
) -> Out {
    berth_bin_with_fds(t, Path::new(BERTH), args, fds, env)
}

/// As [`berth_with_fds`], with the berth binary at `bin` (a copy the test may lose).
pub(crate) fn berth_bin_with_fds(
    t: &Env,
    bin: &Path,
    args: &[&str],
    fds: &[(&OwnedFd, RawFd)],
    env: &[(&str, &str)],
) -> Out {
    let n = FDS_CMD.fetch_add(1, Ordering::Relaxed);
    let out = t.dir.join(format!("fds-cmd{n}.out"));
    let err = t.dir.join(format!("fds-cmd{n}.err"));
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(&t.root).args(args);
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let pairs: Vec<(RawFd, RawFd)> = fds.iter().map(|(f, to)| (f.as_raw_fd(), *to)).collect();
    // SAFETY: between fork and exec only fcntl and dup2, which are async-signal-safe; the
    // sources are first moved above every target so no dup2 clobbers a later source.
    unsafe {
        cmd.pre_exec(move || {
            let mut high = Vec::with_capacity(pairs.len());
            for (src, _) in &pairs {
                let h = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 500);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (h, (_, to)) in high.iter().zip(&pairs) {
                // dup2 clears close-on-exec on the target.
                if libc::dup2(*h, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let what = format!(
        "{} --root {} {}",
        bin.display(),
        t.root.display(),
        args.join(" ")
    );
    // A binary the test has just written can be "busy" a moment: another thread's child,
    // between fork and exec, may still hold the fd it was written through.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.expect("spawn berth"),
        }
    };
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        what,
        status,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
        stdout_path: out,
    }
}

/// A file opened read-only (close-on-exec in the test process).
pub(crate) fn open_fd(path: &Path) -> OwnedFd {
    OwnedFd::from(fs::File::open(path).unwrap())
}

/// runc's recvtty in a thread: accepts berth's connection on a unix socket, takes the pty
/// master from the SCM_RIGHTS message, and reads it until the container's side closes.
pub(crate) struct ConsoleReceiver {
    pub path: PathBuf,
    thread: JoinHandle<Result<(String, String), String>>,
}

impl ConsoleReceiver {
    pub(crate) fn new(dir: &Path) -> ConsoleReceiver {
        let n = FDS_CMD.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("console{n}.sock"));
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || receive_console(listener));
        ConsoleReceiver { path, thread }
    }

    pub(crate) fn sock(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// (the message's payload, everything read from the master with `\r` removed).
    pub(crate) fn finish(self) -> Result<(String, String), String> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the receiver panicked".into()))
    }
}

fn receive_console(listener: UnixListener) -> Result<(String, String), String> {
    let end = Instant::now() + Duration::from_secs(20);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > end {
                    return Err("nobody connected to the console socket".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
            fds.extend(f);
        }
    }
    let n = msg.bytes;
    let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
    if fds.len() != 1 {
        return Err(format!(
            "expected one fd, got {fds:?} (payload {payload:?})"
        ));
    }
    // SAFETY: SCM_RIGHTS just gave us this fd.
    let master = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r == 0 {
            if Instant::now() > end {
                return Err(format!(
                    "the terminal did not close; read so far: {:?}",
                    String::from_utf8_lossy(&text)
                ));
            }
            continue;
        }
        // SAFETY: reading into a live buffer of the given length.
        let got = unsafe { libc::read(master.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if got <= 0 {
            // EIO: every fd of the container's side is closed.
            break;
        }
        text.extend_from_slice(&chunk[..got as usize]);
    }
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    Ok((payload, text))
}

/// `create` and `run` of `b` must both fail naming `phrases`, leave nothing behind and no
/// container listed. Returns `create`'s output.
fn refused(t: &Env, b: &Bundle, phrases: &[&str]) -> Out {
    let mut outs = Vec::new();
    for cmd in ["create", "run"] {
        let id = t.id("bad");
        let out = t.leaves_nothing(&id, || t.berth(&[cmd, "--bundle", b.path(), &id]));
        assert_ne!(out.code(), 0, "{cmd} must fail\n{out}");
        for p in phrases {
            assert!(
                out.stderr.contains(p),
                "{cmd}: stderr must contain {p:?}\n{out}"
            );
        }
        assert!(out.stderr.starts_with("berth: "), "{out}");
        t.berth(&["state", &id]).fails_with("does not exist");
        let list = t.berth(&["list", "-q"]).stdout;
        assert!(!list.contains(&id), "{cmd} left a container listed: {list}");
        outs.push(out);
    }
    outs.swap_remove(0)
}

fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ns_of(pid: i32, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `name link` lines for each namespace file of the shell.
const NS_LINKS: &str =
    "for n in cgroup ipc mnt net pid time user uts; do echo $n $(readlink /proc/$$/ns/$n); done";

fn ns_lines(out: &Out) -> BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pid_of(t: &Env, id: &str) -> i32 {
    t.state(id)["pid"].as_i64().unwrap() as i32
}

/// The fields of /proc/<pid>/stat after the command name, numbered as in proc(5).
fn stat_field(stat: &str, n: usize) -> String {
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace()
        .nth(n - 3)
        .unwrap_or_else(|| panic!("no field {n} in {stat:?}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// capabilities

/// The configured sets of one case.
struct Caps {
    bounding: CapSet,
    effective: CapSet,
    permitted: CapSet,
    inheritable: CapSet,
    ambient: CapSet,
}

/// What execve(2) makes of the sets berth set, for busybox (no file capabilities, not
/// setuid): root's file sets count as full, so P'(permitted) = bounding | inheritable,
/// capped at the old permitted set under no_new_privs, and its effective set is all of
/// it; another user keeps only the ambient set in P' and E'. I and bounding are kept.
fn after_execve(root: bool, nnp: bool, c: &Caps) -> BTreeMap<&'static str, CapSet> {
    let mut perm: CapSet = if root {
        c.bounding.union(&c.inheritable).copied().collect()
    } else {
        CapSet::new()
    };
    if nnp && !perm.is_subset(&c.permitted) {
        perm = perm.intersection(&c.permitted).copied().collect();
    }
    perm.extend(c.ambient.iter().copied());
    let eff = if root {
        perm.clone()
    } else {
        c.ambient.clone()
    };
    BTreeMap::from([
        ("CapInh", c.inheritable.clone()),
        ("CapPrm", perm),
        ("CapEff", eff),
        ("CapBnd", c.bounding.clone()),
        ("CapAmb", c.ambient.clone()),
    ])
}

fn caps_json(c: &Caps) -> Value {
    json!({
        "bounding": c.bounding, "effective": c.effective, "permitted": c.permitted,
        "inheritable": c.inheritable, "ambient": c.ambient,
    })
}

#[test]
fn capability_sets_are_the_configured_ones_bit_by_bit() {
    let Some(t) = Env::new("caps") else { return };
    let host = host_bounding();
    let mut all_host = host.clone();
    all_host.remove("CAP_SYS_RESOURCE");
    // (case, uid, noNewPrivileges, sets)
    let table: Vec<(&str, u32, bool, Caps)> = vec![
        (
            "root, distinct sets, no inheritable",
            0,
            true,
            Caps {
                bounding: caps(&[
                    "CAP_CHOWN",
                    "CAP_KILL",
                    "CAP_SETUID",
                    "CAP_NET_RAW",
                    "CAP_SYS_ADMIN",
                ]),
                permitted: caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]),
                effective: caps(&["CAP_CHOWN", "CAP_KILL"]),
                inheritable: caps(&[]),
                ambient: caps(&[]),
            },
        ),
        (
            "root, without no_new_privs: execve grants the bounding set",
            0,
            false,
            Caps {
                bounding: caps(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SYS_ADMIN"]),
                permitted: caps(&["CAP_CHOWN"]),
                effective: caps(&["CAP_CHOWN"]),
                inheritable: caps(&[]),
                ambient: caps(&[]),
            },
        ),
        (
            "root, inheritable configured",
            0,
            false,
            Caps {
                bounding: caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETGID"]),
                permitted: caps(&["CAP_CHOWN", "CAP_KILL"]),
                effective: caps(&["CAP_CHOWN"]),
                inheritable: caps(&["CAP_KILL", "CAP_NET_RAW", "CAP_SETGID"]),
                ambient: caps(&[]),
            },
        ),
        (
            "uid 1000 with an ambient capability",
            1000,
            true,
            Caps {
                bounding: caps(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"]),
                permitted: caps(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"]),
                effective: caps(&["CAP_CHOWN"]),
                inheritable: caps(&["CAP_CHOWN", "CAP_KILL"]),
                ambient: caps(&["CAP_CHOWN"]),
            },
        ),
        (
            "uid 1000 without ambient: nothing effective after execve",
            1000,
            true,
            Caps {
                bounding: caps(&["CAP_CHOWN", "CAP_KILL"]),
                permitted: caps(&["CAP_CHOWN", "CAP_KILL"]),
                effective: caps(&["CAP_CHOWN", "CAP_KILL"]),
                inheritable: caps(&[]),
                ambient: caps(&[]),
            },
        ),
        (
            "every capability of the host",
            0,
            true,
            Caps {
                bounding: all_host.clone(),
                permitted: all_host.clone(),
                effective: all_host.clone(),
                inheritable: caps(&[]),
                ambient: caps(&[]),
            },
        ),
        (
            "all sets empty",
            0,
            true,
            Caps {
                bounding: caps(&[]),
                permitted: caps(&[]),
                effective: caps(&[]),
                inheritable: caps(&[]),
                ambient: caps(&[]),
            },
        ),
    ];
    // CAP_CHOWN effective or not, seen by what chown(2) does to a file of our own.
    let script = format!(
        "{SELF_STATUS}; touch /dev/shm/f; chown 2000 /dev/shm/f 2>/dev/null && echo chown=ok || echo chown=denied"
    );
    for (case, uid, nnp, c) in &table {
        let out = t.run_sh(&script, |cfg| {
            cfg["process"]["capabilities"] = caps_json(c);
            cfg["process"]["noNewPrivileges"] = json!(nnp);
            cfg["process"]["user"] = json!({"uid": uid, "gid": uid});
        });
        out.ok();
        let ctx = format!("case: {case}\n{out}");
        let got = cap_sets(&out.stdout);
        let want = after_execve(*uid == 0, *nnp, c);
        for (k, w) in &want {
            assert_eq!(&got[k], w, "{k}, {ctx}");
        }
        assert!(
            got["CapInh"].is_empty() || !c.inheritable.is_empty(),
            "inheritable filled in: {ctx}"
        );
        let nnp_line = status_fields(&out.stdout)["NoNewPrivs"].clone();
        assert_eq!(nnp_line, if *nnp { "1" } else { "0" }, "{ctx}");
        let chown = if want["CapEff"].contains("CAP_CHOWN") {
            "chown=ok"
        } else {
            "chown=denied"
        };
        assert!(out.stdout.contains(chown), "expected {chown}: {ctx}");
    }
}

#[test]
fn default_config_has_no_inheritable_or_ambient_capabilities() {
    let Some(t) = Env::new("caps_default") else {
        return;
    };
    let out = t.run_sh(SELF_STATUS, |_| {});
    out.ok();
    let got = cap_sets(&out.stdout);
    let spec = caps(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(got["CapInh"], CapSet::new(), "{out}");
    assert_eq!(got["CapAmb"], CapSet::new(), "{out}");
    assert_eq!(got["CapBnd"], spec, "{out}");
    assert_eq!(got["CapEff"], spec, "{out}");
    assert_eq!(got["CapPrm"], spec, "{out}");
    assert_eq!(status_fields(&out.stdout)["NoNewPrivs"], "1", "{out}");
    // Control: with no capabilities object at all the process keeps berth's own sets.
    let out = t.run_sh(SELF_STATUS, |c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
    });
    out.ok();
    assert_eq!(cap_sets(&out.stdout)["CapBnd"], host_bounding(), "{out}");
}

#[test]
fn unknown_capability_name_is_refused_naming_the_set() {
    let Some(t) = Env::new("caps_unknown") else {
        return;
    };
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        for bogus in ["CAP_BOGUS", "CAP_KILLX", "cap_kill ", "", "CAP_"] {
            let b = t.bundle(|c| {
                c["process"]["capabilities"][set] = json!(["CAP_KILL", bogus]);
            });
            let out = refused(&t, &b, &[&format!("process.capabilities.{set}")]);
            assert!(out.stderr.contains("config.json"), "{out}");
        }
    }
}

#[test]
fn capability_missing_from_the_host_bounding_set_is_refused() {
    let Some(t) = Env::new("caps_not_on_host") else {
        return;
    };
    if host_bounding().contains("CAP_SYS_RESOURCE") {
        eprintln!("skipped: this host has CAP_SYS_RESOURCE");
        return;
    }
    // (set that lists it, the other sets) — each set named in the message.
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        let b = t.bundle(|c| {
            let base = json!(["CAP_KILL"]);
            c["process"]["capabilities"] = json!({
                "bounding": base, "effective": base, "permitted": base,
                "inheritable": base, "ambient": base,
            });
            c["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
        });
        refused(
            &t,
            &b,
            &[
                &format!("config.json process.capabilities.{set}"),
                "CAP_SYS_RESOURCE",
                "bounding set",
            ],
        );
    }
}

#[test]
fn inheritable_capability_outside_the_bounding_set_is_refused_at_create() {
    let Some(t) = Env::new("caps_inh_bnd") else {
        return;
    };
    // capset(2) refuses an inheritable capability the bounding set lacks: berth checks
    // every other capability value at create, so this one is expected there too, named.
    let b = t.bundle(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"],
            "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
        });
    });
    refused(&t, &b, &["process.capabilities.inheritable", "CAP_NET_RAW"]);
}

#[test]
fn ambient_capability_needs_permitted_and_inheritable() {
    let Some(t) = Env::new("caps_ambient_rule") else {
        return;
    };
    let b = t.bundle(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"],
            "inheritable": [], "ambient": ["CAP_CHOWN"],
        });
    });
    refused(&t, &b, &["process.capabilities.ambient", "CAP_CHOWN"]);
}

// ---------------------------------------------------------------------------------------
// noNewPrivileges, rlimits, user, umask, oomScoreAdj

#[test]
fn no_new_privileges_line_follows_the_config() {
    let Some(t) = Env::new("nnp") else { return };
    // (noNewPrivileges, the NoNewPrivs line); absent means false.
    let table: &[(Option<bool>, &str)] = &[(Some(true), "1"), (Some(false), "0"), (None, "0")];
    for (nnp, want) in table {
        let out = t.run_sh(
            &format!("{SELF_STATUS}; grep NoNewPrivs /proc/self/status"),
            |c| match nnp {
                Some(v) => c["process"]["noNewPrivileges"] = json!(v),
                None => {
                    c["process"]
                        .as_object_mut()
                        .unwrap()
                        .remove("noNewPrivileges");
                }
            },
        );
        out.ok();
        assert_eq!(
            status_fields(&out.stdout)["NoNewPrivs"],
            *want,
            "{nnp:?}\n{out}"
        );
        // A child the shell execs keeps it.
        assert!(
            out.stdout.contains(&format!("NoNewPrivs:\t{want}")),
            "{nnp:?}\n{out}"
        );
    }
}

fn own_rlimit(res: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit to a valid pointer.
    assert_eq!(unsafe { libc::getrlimit(res, &mut r) }, 0);
    (r.rlim_cur, r.rlim_max)
}

#[test]
fn rlimits_are_set_soft_and_hard() {
    let Some(t) = Env::new("rlimits") else { return };
    // (type, soft, hard, ulimit flag, what ulimit prints for soft and hard, /proc/self/limits name)
    let table: &[(&str, u64, u64, &str, &str, &str, &str)] = &[
        (
            "RLIMIT_NOFILE",
            1000,
            2000,
            "n",
            "1000",
            "2000",
            "Max open files",
        ),
        ("RLIMIT_NPROC", 500, 600, "u", "500", "600", "Max processes"),
        // ulimit -c and -f count 512-byte blocks, -s and -l KiB.
        (
            "RLIMIT_CORE",
            5120,
            10240,
            "c",
            "10",
            "20",
            "Max core file size",
        ),
        (
            "RLIMIT_FSIZE",
            1 << 20,
            2 << 20,
            "f",
            "2048",
            "4096",
            "Max file size",
        ),
        (
            "RLIMIT_STACK",
            4 << 20,
            6 << 20,
            "s",
            "4096",
            "6144",
            "Max stack size",
        ),
        ("RLIMIT_CPU", 100, 200, "t", "100", "200", "Max cpu time"),
        (
            "RLIMIT_MSGQUEUE",
            4096,
            8192,
            "q",
            "4096",
            "8192",
            "Max msgqueue size",
        ),
        (
            "RLIMIT_MEMLOCK",
            64 << 10,
            128 << 10,
            "l",
            "64",
            "128",
            "Max locked memory",
        ),
    ];
    let rlimits: Vec<Value> = table
        .iter()
        .map(|(ty, soft, hard, ..)| json!({"type": ty, "soft": soft, "hard": hard}))
        .collect();
    let mut script = String::new();
    for (ty, _, _, flag, ..) in table {
        script.push_str(&format!("echo {ty} $(ulimit -{flag}) $(ulimit -H{flag}); "));
    }
    script.push_str("cat /proc/$$/limits");
    let out = t.run_sh(&script, |c| c["process"]["rlimits"] = json!(rlimits));
    out.ok();
    for (ty, soft, hard, _, usoft, uhard, limits_name) in table {
        assert!(
            out.stdout.contains(&format!("{ty} {usoft} {uhard}\n")),
            "{ty}: ulimit must print {usoft} {uhard}\n{out}"
        );
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(limits_name))
            .unwrap_or_else(|| panic!("{limits_name} not in /proc/self/limits\n{out}"));
        let nums: Vec<&str> = line[limits_name.len()..].split_whitespace().collect();
        assert_eq!(
            (nums[0], nums[1]),
            (soft.to_string().as_str(), hard.to_string().as_str()),
            "{ty}: {line}\n{out}"
        );
    }

    // Control: no rlimits, and the process has berth's (the test's) own limits.
    let out = t.run_sh("ulimit -n; ulimit -Hn", |c| {
        c["process"].as_object_mut().unwrap().remove("rlimits");
    });
    out.ok();
    let (soft, hard) = own_rlimit(libc::RLIMIT_NOFILE);
    assert_eq!(out.stdout, format!("{soft}\n{hard}\n"), "{out}");
}

#[test]
fn bad_rlimits_are_refused() {
    let Some(t) = Env::new("rlimits_bad") else {
        return;
    };
    let (_, own_hard) = own_rlimit(libc::RLIMIT_NOFILE);
    // (rlimits, phrases)
    let mut table: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
            vec!["process.rlimits[0]"],
        ),
        (
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                   {"type": "RLIMIT_NPROC", "soft": 100, "hard": 10}]),
            vec!["process.rlimits[1]", "RLIMIT_NPROC"],
        ),
    ];
    // Raising a hard limit above berth's own needs CAP_SYS_RESOURCE, which this host lacks.
    if !host_bounding().contains("CAP_SYS_RESOURCE") && own_hard < 1 << 20 {
        table.push((
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": own_hard + 1}]),
            vec!["process.rlimits[0]", "RLIMIT_NOFILE", "CAP_SYS_RESOURCE"],
        ));
    }
    for (rl, phrases) in table {
        let b = t.bundle(|c| c["process"]["rlimits"] = rl.clone());
        refused(&t, &b, &phrases);
    }
}

#[test]
fn umask_is_the_configured_one() {
    let Some(t) = Env::new("umask") else { return };
    // (umask, what `umask` prints, mode of a new file, of a new directory)
    let table: &[(Option<u32>, &str, &str, &str)] = &[
        (Some(0o077), "0077", "600", "700"),
        (Some(0o002), "0002", "664", "775"),
        (Some(0), "0000", "666", "777"),
        (Some(0o027), "0027", "640", "750"),
        // Unset: 0022, as runc.
        (None, "0022", "644", "755"),
    ];
    let script =
        "umask; touch /dev/shm/f; mkdir /dev/shm/d; stat -c %a /dev/shm/f; stat -c %a /dev/shm/d";
    for (umask, printed, file, dir) in table {
        let out = t.run_sh(script, |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [3000]});
            if let Some(m) = umask {
                c["process"]["user"]["umask"] = json!(m);
            }
        });
        out.ok();
        assert_eq!(
            out.stdout,
            format!("{printed}\n{file}\n{dir}\n"),
            "umask {umask:?}\n{out}"
        );
    }
}

#[test]
fn oom_score_adj_is_set() {
    let Some(t) = Env::new("oom") else { return };
    let own = fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    for adj in [500, 1000, 1] {
        let out = t.run_sh(
            "cat /proc/$$/oom_score_adj; cat /proc/self/oom_score_adj",
            |c| c["process"]["oomScoreAdj"] = json!(adj),
        );
        out.ok();
        assert_eq!(out.stdout, format!("{adj}\n{adj}\n"), "{out}");
    }
    // Control: unset, the process has berth's (the test's) value.
    let out = t.run_sh("cat /proc/$$/oom_score_adj", |_| {});
    out.ok();
    assert_eq!(out.stdout, own, "{out}");
    assert_eq!(
        fs::read_to_string("/proc/self/oom_score_adj").unwrap(),
        own,
        "the test's own oom_score_adj changed"
    );
}

#[test]
fn bad_oom_score_adj_is_refused() {
    let Some(t) = Env::new("oom_bad") else { return };
    let b = t.bundle(|c| c["process"]["oomScoreAdj"] = json!(1001));
    refused(&t, &b, &["process.oomScoreAdj"]);
    if host_bounding().contains("CAP_SYS_RESOURCE") {
        eprintln!("this host has CAP_SYS_RESOURCE: a negative oomScoreAdj is allowed here");
        return;
    }
    // Lowering it below the caller's needs CAP_SYS_RESOURCE, which this machine lacks.
    let b = t.bundle(|c| c["process"]["oomScoreAdj"] = json!(-500));
    let out = refused(&t, &b, &["process.oomScoreAdj", "CAP_SYS_RESOURCE"]);
    eprintln!("negative oomScoreAdj on this host: {}", out.stderr.trim());
}

// ---------------------------------------------------------------------------------------
// sysctl

#[test]
fn sysctls_are_set_in_the_container_only() {
    let Some(t) = Env::new("sysctl") else { return };
    let path = |k: &str| format!("/proc/sys/{}", k.replace('.', "/"));
    let host = |k: &str| fs::read_to_string(path(k)).unwrap().trim().to_string();
    // (key, two values): namespaced by network, ipc and uts; the one the host does not
    // have now is set.
    let candidates: &[(&str, &str, &str)] = &[
        ("net.ipv4.ip_forward", "1", "0"),
        ("net.core.somaxconn", "1234", "1235"),
        ("net.ipv4.tcp_keepalive_time", "1111", "2222"),
        ("kernel.shmmax", "68719476736", "68719476737"),
        ("kernel.msgmax", "12345", "12346"),
        ("fs.mqueue.queues_max", "300", "301"),
        ("kernel.domainname", "sysctl.example", "sysctl.example2"),
    ];
    let table: Vec<(&str, &str)> = candidates
        .iter()
        .map(|(k, a, b)| (*k, if host(k) == *a { *b } else { *a }))
        .collect();
    let host_before: Vec<String> = table.iter().map(|(k, _)| host(k)).collect();
    let sysctl: BTreeMap<&str, &str> = table.iter().copied().collect();
    let script: String = table
        .iter()
        .map(|(k, _)| format!("echo {k}=$(cat {}); ", path(k)))
        .collect();
    let out = t.run_sh(&script, |c| c["linux"]["sysctl"] = json!(sysctl));
    out.ok();
    for (k, v) in &table {
        assert!(
            out.stdout.contains(&format!("{k}={v}\n")),
            "{k} must read {v} inside\n{out}"
        );
    }
    let host_after: Vec<String> = table.iter().map(|(k, _)| host(k)).collect();
    assert_eq!(host_before, host_after, "a host sysctl changed");

    // Control: without the sysctl, a new network namespace has its own default.
    let (_, somaxconn) = table[1];
    let out = t.run_sh("cat /proc/sys/net/core/somaxconn", |_| {});
    out.ok();
    assert_ne!(out.stdout.trim(), somaxconn, "{out}");
}

#[test]
fn sysctl_outside_the_containers_namespaces_is_refused() {
    let Some(t) = Env::new("sysctl_bad") else {
        return;
    };
    type Edit = fn(&mut Value);
    // (key, value, config change, phrases)
    let table: &[(&str, &str, Edit, &[&str])] = &[
        (
            "net.ipv4.ip_forward",
            "1",
            |c| drop_namespace(c, "network"),
            &["linux.sysctl", "net.ipv4.ip_forward", "network namespace"],
        ),
        (
            "kernel.shmmax",
            "1000000",
            |c| drop_namespace(c, "ipc"),
            &["linux.sysctl", "kernel.shmmax", "ipc namespace"],
        ),
        (
            "vm.swappiness",
            "10",
            |_| {},
            &["linux.sysctl", "vm.swappiness", "host"],
        ),
        (
            "kernel.panic",
            "5",
            |_| {},
            &["linux.sysctl", "kernel.panic", "host"],
        ),
        (
            "net.ipv4.no_such_key",
            "1",
            |_| {},
            &["linux.sysctl", "net.ipv4.no_such_key"],
        ),
        (
            "net.ipv4/../../vm.swappiness",
            "10",
            |_| {},
            &["linux.sysctl"],
        ),
    ];
    let swappiness = fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    for (key, value, edit, phrases) in table {
        let b = t.bundle(|c| {
            c["linux"]["sysctl"] = json!({ *key: value });
            edit(c);
        });
        refused(&t, &b, phrases);
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness,
        "the host's vm.swappiness changed"
    );
}

// ---------------------------------------------------------------------------------------
// namespaces

const NS_TYPES: [(&str, &str); 7] = [
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

#[test]
fn each_listed_namespace_is_new_and_the_others_are_the_hosts() {
    let Some(t) = Env::new("ns_new") else { return };
    let host: BTreeMap<&str, String> =
        ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
            .into_iter()
            .map(|n| (n, host_ns(n)))
            .collect();
    // (listed namespaces); a mount namespace always, so the container's mounts stay its own.
    let cases: Vec<Vec<&str>> = vec![
        NS_TYPES.iter().map(|(c, _)| *c).collect(),
        vec!["mount"],
        vec!["mount", "pid"],
        vec!["mount", "network"],
        vec!["mount", "ipc"],
        vec!["mount", "uts"],
        vec!["mount", "cgroup"],
        vec!["mount", "time"],
    ];
    for listed in cases {
        let out = t.run_sh(NS_LINKS, |c| {
            c["linux"]["namespaces"] = json!(
                listed
                    .iter()
                    .map(|n| json!({"type": n}))
                    .collect::<Vec<_>>()
            );
            if !listed.contains(&"uts") {
                c.as_object_mut().unwrap().remove("hostname");
            }
        });
        out.ok();
        let got = ns_lines(&out);
        for (cfg, file) in NS_TYPES {
            let inside = got
                .get(file)
                .unwrap_or_else(|| panic!("no {file} line\n{out}"));
            assert!(inside.starts_with(&format!("{file}:[")), "{out}");
            if listed.contains(&cfg) {
                assert_ne!(
                    inside, &host[file],
                    "{cfg} listed in {listed:?}: not new\n{out}"
                );
            } else {
                assert_eq!(
                    inside, &host[file],
                    "{cfg} not listed in {listed:?}: must be the host's\n{out}"
                );
            }
        }
        assert_eq!(got["user"], host["user"], "{out}");
    }
}

#[test]
fn namespaces_joined_by_path() {
    let Some(t) = Env::new("ns_join") else { return };
    let owner = t.bundle(|c| {
        c["process"]["args"] = json!(["sleep", "1000"]);
        c["hostname"] = json!("ns-owner");
    });
    let oid = t.id("owner");
    t.run_detached(&owner, &oid);
    let opid = pid_of(&t, &oid);

    let out = t.run_sh(&format!("hostname; {NS_LINKS}"), |c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "mount"},
            {"type": "network", "path": format!("/proc/{opid}/ns/net")},
            {"type": "uts", "path": format!("/proc/{opid}/ns/uts")},
        ]);
    });
    out.ok();
    assert!(out.stdout.starts_with("ns-owner\n"), "{out}");
    let got = ns_lines(&out);
    for n in ["net", "uts"] {
        assert_eq!(got[n], ns_of(opid, n), "{n} must be the owner's\n{out}");
    }
    for n in ["ipc", "pid", "mnt"] {
        assert_ne!(got[n], ns_of(opid, n), "{n} must be new\n{out}");
        assert_ne!(got[n], host_ns(n), "{n} must be new\n{out}");
    }
    assert_eq!(t.status(&oid), "running", "joining changed the owner");
}

#[test]
fn namespace_path_of_the_wrong_type_or_not_a_namespace_is_refused() {
    let Some(t) = Env::new("ns_join_bad") else {
        return;
    };
    let owner = t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let oid = t.id("owner");
    t.run_detached(&owner, &oid);
    let opid = pid_of(&t, &oid);
    let plain = t.dir.join("plain-file");
    fs::write(&plain, "").unwrap();
    let missing = t.dir.join("missing");
    // (type, path, phrases)
    let table: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "network",
            format!("/proc/{opid}/ns/uts"),
            vec!["linux.namespaces[", "(network)", "uts namespace"],
        ),
        (
            "ipc",
            format!("/proc/{opid}/ns/net"),
            vec!["linux.namespaces[", "(ipc)", "network namespace"],
        ),
        (
            "uts",
            format!("/proc/{opid}/ns/mnt"),
            vec!["linux.namespaces[", "(uts)", "mount namespace"],
        ),
        (
            "pid",
            plain.to_str().unwrap().to_string(),
            vec!["linux.namespaces[", "(pid)", "not a namespace"],
        ),
        (
            "network",
            missing.to_str().unwrap().to_string(),
            vec![
                "linux.namespaces[",
                "(network)",
                "No such file or directory",
            ],
        ),
    ];
    for (typ, path, phrases) in table {
        let b = t.bundle(|c| {
            drop_namespace(c, typ);
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": typ, "path": path}));
        });
        refused(&t, &b, &phrases);
    }
    assert_eq!(t.status(&oid), "running");
}

/// A config with a new user namespace mapping container ids 0..65536 to host 100000..
fn with_userns(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

fn shared_dir(t: &Env) -> PathBuf {
    let d = t.dir.join("shared");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn bind(c: &mut Value, src: &Path, dst: &str) {
    add_mount(
        c,
        json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rw"]}),
    );
}

#[test]
fn user_namespace_with_mappings() {
    let Some(t) = Env::new("userns") else { return };
    let shared = shared_dir(&t);
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
                  stat -c %u:%g /etc/passwd; touch /tmp/by-$(id -u); readlink /proc/$$/ns/user";
    for uid in [0u32, 1000] {
        let out = t.run_sh(script, |c| {
            with_userns(c);
            bind(c, &shared, "/tmp");
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
        });
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let map: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(map, ["0", "100000", "65536"], "uid_map\n{out}");
        let map: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(map, ["0", "100000", "65536"], "gid_map\n{out}");
        assert_eq!(lines[2], uid.to_string(), "{out}");
        assert_eq!(lines[3], uid.to_string(), "{out}");
        // The host's root is not mapped: its files show as the overflow id.
        assert_eq!(lines[4], "65534:65534", "{out}");
        assert_ne!(lines[5], host_ns("user"), "{out}");
        let m = fs::metadata(shared.join(format!("by-{uid}"))).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (100000 + uid, 100000 + uid),
            "a file made by container uid {uid} belongs to the mapped host id"
        );
    }
}

#[test]
fn user_namespace_without_mappings_is_refused() {
    let Some(t) = Env::new("userns_nomap") else {
        return;
    };
    let b = t.bundle(|c| {
        with_userns(c);
        c["linux"].as_object_mut().unwrap().remove("uidMappings");
        c["linux"].as_object_mut().unwrap().remove("gidMappings");
    });
    refused(&t, &b, &["linux.uidMappings"]);
}

#[test]
fn user_namespace_joined_by_path_with_new_pid_mount_ipc() {
    let Some(t) = Env::new("userns_join") else {
        return;
    };
    let owner = t.bundle(|c| {
        with_userns(c);
        c["process"]["args"] = json!(["sleep", "1000"]);
    });
    let oid = t.id("owner");
    t.run_detached(&owner, &oid);
    let opid = pid_of(&t, &oid);
    let out = t.run_sh(
        &format!("cat /proc/self/uid_map; echo pid $$; {NS_LINKS}"),
        |c| {
            c["linux"]["namespaces"] = json!([
                {"type": "user", "path": format!("/proc/{opid}/ns/user")},
                {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "network"},
            ]);
        },
    );
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let map: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], "pid 1", "a new pid namespace\n{out}");
    let got = ns_lines(&out);
    assert_eq!(
        got["user"],
        ns_of(opid, "user"),
        "the owner's user ns\n{out}"
    );
    for n in ["pid", "mnt", "ipc", "uts", "net"] {
        assert_ne!(got[n], ns_of(opid, n), "{n} must be new\n{out}");
        assert_ne!(got[n], host_ns(n), "{n} must be new\n{out}");
    }
}

// ---------------------------------------------------------------------------------------
// time namespace

fn uptime() -> f64 {
    fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn time_namespace_offsets_shift_uptime() {
    let Some(t) = Env::new("timens") else { return };
    const OFF: f64 = 10_000_000.0;
    let before = uptime();
    let out = t.run_sh("cat /proc/uptime; cat /proc/self/timens_offsets", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({
            "boottime": {"secs": OFF as i64, "nanosecs": 0},
            "monotonic": {"secs": 1234, "nanosecs": 5678},
        });
    });
    let after = uptime();
    out.ok();
    let inside: f64 = out
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= before + OFF - 1.0 && inside <= after + OFF + 1.0,
        "uptime {inside} inside, host {before}..{after}, offset {OFF}\n{out}"
    );
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["monotonic", "1234", "5678"]), "{out}");
    assert!(lines.contains(&vec!["boottime", "10000000", "0"]), "{out}");

    // Control: a time namespace without offsets has the host's uptime.
    let before = uptime();
    let out = t.run_sh("cat /proc/uptime", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
    });
    let after = uptime();
    out.ok();
    let inside: f64 = out
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= before - 1.0 && inside <= after + 1.0,
        "{inside} vs {before}..{after}\n{out}"
    );
}

#[test]
fn bad_time_offsets_are_refused() {
    let Some(t) = Env::new("timens_bad") else {
        return;
    };
    let add_time = |c: &mut Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}))
    };
    let b = t.bundle(|c| {
        add_time(c);
        c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 5}});
    });
    refused(&t, &b, &["linux.timeOffsets", "realtime"]);
    let b = t.bundle(|c| c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 5}}));
    refused(&t, &b, &["linux.timeOffsets", "time namespace"]);
    // Uptime cannot go below zero.
    let b = t.bundle(|c| {
        add_time(c);
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": -(1i64 << 40)}});
    });
    refused(&t, &b, &["linux.timeOffsets"]);
}

// ---------------------------------------------------------------------------------------
// hostname, domainname, personality, scheduler, ioPriority, execCPUAffinity

#[test]
fn hostname_and_domainname() {
    let Some(t) = Env::new("domainname") else {
        return;
    };
    let host_domain = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (h, d) in [("box", "example.org"), ("other-box", "d"), ("x", "(none)")] {
        let out = t.run_sh("hostname; cat /proc/sys/kernel/domainname; uname -n", |c| {
            c["hostname"] = json!(h);
            c["domainname"] = json!(d);
        });
        out.ok();
        assert_eq!(out.stdout, format!("{h}\n{d}\n{h}\n"), "{out}");
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    // Without a uts namespace neither may be set: it would rename the host.
    for field in ["hostname", "domainname"] {
        let b = t.bundle(|c| {
            drop_namespace(c, "uts");
            c.as_object_mut().unwrap().remove("hostname");
            c[field] = json!("nope");
        });
        refused(&t, &b, &[&format!("config.json {field}"), "uts namespace"]);
    }
}

#[test]
fn personality_linux32() {
    let Some(t) = Env::new("personality") else {
        return;
    };
    // (domain, uname -m, /proc/self/personality)
    for (domain, machine, pers) in [
        (Some("LINUX32"), "i686", "00000008"),
        (Some("LINUX"), "x86_64", "00000000"),
        (None, "x86_64", "00000000"),
    ] {
        let out = t.run_sh("uname -m; cat /proc/self/personality", |c| {
            if let Some(d) = domain {
                c["linux"]["personality"] = json!({"domain": d});
            }
        });
        out.ok();
        assert_eq!(
            out.stdout,
            format!("{machine}\n{pers}\n"),
            "{domain:?}\n{out}"
        );
    }
    let b = t.bundle(|c| c["linux"]["personality"] = json!({"domain": "LINUX64"}));
    refused(&t, &b, &["linux.personality"]);
    let b = t.bundle(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    refused(&t, &b, &["linux.personality.flags"]);
}

#[test]
fn scheduler_policy_and_nice() {
    let Some(t) = Env::new("sched") else { return };
    let own_nice = stat_field(&fs::read_to_string("/proc/self/stat").unwrap(), 19);
    // (scheduler, policy number, nice)
    let table: &[(Option<Value>, &str, &str)] = &[
        (Some(json!({"policy": "SCHED_BATCH", "nice": 5})), "3", "5"),
        (Some(json!({"policy": "SCHED_IDLE"})), "5", "0"),
        (Some(json!({"policy": "SCHED_OTHER", "nice": 7})), "0", "7"),
        (None, "0", own_nice.as_str()),
    ];
    let script = "grep -E '^policy' /proc/$$/sched; cat /proc/$$/stat; true";
    for (sched, policy, nice) in table {
        let out = t.run_sh(script, |c| {
            if let Some(s) = sched {
                c["process"]["scheduler"] = s.clone();
            }
        });
        out.ok();
        let mut lines = out.stdout.lines();
        let pol = lines.next().unwrap().split(':').nth(1).unwrap().trim();
        assert_eq!(pol, *policy, "{sched:?}\n{out}");
        let stat = lines.next().unwrap();
        assert_eq!(
            stat_field(stat, 41),
            *policy,
            "stat policy, {sched:?}\n{out}"
        );
        assert_eq!(stat_field(stat, 19), *nice, "stat nice, {sched:?}\n{out}");
    }
    // SCHED_FIFO needs a priority of 1 to 99.
    let b =
        t.bundle(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 0}));
    refused(&t, &b, &["process.scheduler"]);
    let b = t.bundle(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_NOPE"}));
    refused(&t, &b, &["process.scheduler"]);
}

#[test]
fn io_priority() {
    let Some(t) = Env::new("ioprio") else { return };
    // (ioPriority, what `ionice -p $$` prints)
    let table: &[(Option<Value>, &str)] = &[
        (
            Some(json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})),
            "idle",
        ),
        (
            Some(json!({"class": "IOPRIO_CLASS_BE", "priority": 6})),
            "best-effort: prio 6",
        ),
        (
            Some(json!({"class": "IOPRIO_CLASS_RT", "priority": 3})),
            "realtime: prio 3",
        ),
    ];
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0) takes integers only.
    let own = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    let mut table = table.to_vec();
    if own == 0 {
        table.push((None, "none: prio 0"));
    }
    for (io, want) in &table {
        let out = t.run_sh("ionice -p $$; ionice -p 1", |c| {
            if let Some(v) = io {
                c["process"]["ioPriority"] = v.clone();
            }
        });
        out.ok();
        assert_eq!(out.stdout, format!("{want}\n{want}\n"), "{io:?}\n{out}");
    }
    let b = t.bundle(|c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8})
    });
    refused(&t, &b, &["process.ioPriority"]);
    let b = t.bundle(|c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_NOPE", "priority": 1})
    });
    refused(&t, &b, &["process.ioPriority"]);
}

fn own_cpus() -> String {
    status_fields(&fs::read_to_string("/proc/self/status").unwrap())["Cpus_allowed_list"].clone()
}

#[test]
fn exec_cpu_affinity() {
    let Some(t) = Env::new("affinity") else {
        return;
    };
    let own = own_cpus();
    if own != "0-1" && !own.starts_with("0-") {
        eprintln!("skipped: needs cpus 0 and 1, this process may use {own}");
        return;
    }
    // (execCPUAffinity, Cpus_allowed_list of the program)
    let table: &[(Option<Value>, &str)] = &[
        (Some(json!({"final": "1"})), "1"),
        (Some(json!({"final": "0"})), "0"),
        (Some(json!({"initial": "0"})), "0"),
        (Some(json!({"initial": "0", "final": "1"})), "1"),
        (Some(json!({"initial": "1", "final": "0-1"})), "0-1"),
        (None, own.as_str()),
    ];
    for (aff, want) in table {
        let out = t.run_sh("grep Cpus_allowed_list /proc/$$/status", |c| {
            if let Some(a) = aff {
                c["process"]["execCPUAffinity"] = a.clone();
            }
        });
        out.ok();
        assert_eq!(
            status_fields(&out.stdout)["Cpus_allowed_list"],
            *want,
            "{aff:?}\n{out}"
        );
    }
    for bad in [
        json!({"final": "a"}),
        json!({"initial": "3-1"}),
        json!({"final": "0-99999"}),
    ] {
        let b = t.bundle(|c| c["process"]["execCPUAffinity"] = bad.clone());
        refused(&t, &b, &["process.execCPUAffinity"]);
    }
}

#[test]
fn exec_cpu_affinity_on_a_cpu_the_host_lacks() {
    let Some(t) = Env::new("affinity_absent") else {
        return;
    };
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n >= 100 {
        return;
    }
    // A well-formed list naming no cpu this machine has: the kernel refuses it.
    for (which, v) in [("final", "100"), ("initial", "100")] {
        let b = t.bundle(|c| {
            c["process"]["args"] = json!(["sh", "-c", "echo program-ran"]);
            c["process"]["execCPUAffinity"] = json!({ which: v });
        });
        let id = t.id("aff");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        assert_ne!(out.code(), 0, "{out}");
        assert!(
            out.stderr
                .contains(&format!("process.execCPUAffinity.{which}")),
            "{out}"
        );
        assert!(!out.stdout.contains("program-ran"), "{out}");
    }
}

// ---------------------------------------------------------------------------------------
// file descriptors

/// The fd numbers open in the shell, then the content read through each of `read`. A
/// plain command: a pipe or a redirection would have the shell itself open more fds while
/// `ls` looks.
pub(crate) fn fd_script(read: &[u32]) -> String {
    let mut s = String::from("echo fds:; ls -1 /proc/$$/fd; echo end");
    for n in read {
        s.push_str(&format!("; echo fd{n}=$(cat <&{n})"));
    }
    s
}

/// The fd numbers [`fd_script`] listed, sorted.
pub(crate) fn fd_list(text: &str) -> Vec<u32> {
    let mut v: Vec<u32> = text
        .lines()
        .skip_while(|l| *l != "fds:")
        .skip(1)
        .take_while(|l| *l != "end")
        .map(|s| s.trim().parse().unwrap())
        .collect();
    v.sort_unstable();
    v
}

fn content_file(t: &Env, name: &str) -> OwnedFd {
    let p = t.dir.join(name);
    fs::write(&p, format!("content-of-{name}")).unwrap();
    open_fd(&p)
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_process() {
    let Some(t) = Env::new("fds") else { return };
    // (--preserve-fds, LISTEN_FDS, fds the program must have, fds read back)
    type Case<'a> = (u32, Option<&'a str>, &'a [u32], &'a [u32]);
    let table: &[Case] = &[
        (0, None, &[0, 1, 2], &[]),
        (1, None, &[0, 1, 2, 3], &[3]),
        (3, None, &[0, 1, 2, 3, 4, 5], &[3, 4, 5]),
        (0, Some("2"), &[0, 1, 2, 3, 4], &[3, 4]),
        (1, Some("2"), &[0, 1, 2, 3, 4, 5], &[3, 4, 5]),
    ];
    let names = ["a", "b", "c"];
    let activator = socket_activator(&t);
    for (preserve, listen, want, read) in table {
        // berth gets fds 3, 4, 5 and 9 open and inheritable in every case.
        let (a, b, c, d) = (
            content_file(&t, "a"),
            content_file(&t, "b"),
            content_file(&t, "c"),
            content_file(&t, "d"),
        );
        let fds = [(&a, 3), (&b, 4), (&c, 5), (&d, 9)];
        let bundle = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", fd_script(read)]));
        let id = t.id("fds");
        let p = preserve.to_string();
        let env: Vec<(&str, &str)> = listen.iter().map(|l| ("LISTEN_FDS", *l)).collect();
        let out = berth_bin_with_fds(
            &t,
            &activator,
            &["run", "--preserve-fds", &p, "--bundle", bundle.path(), &id],
            &fds,
            &env,
        );
        out.ok();
        let ctx = format!("--preserve-fds {preserve}, LISTEN_FDS {listen:?}\n{out}");
        assert_eq!(fd_list(&out.stdout), *want, "{ctx}");
        for n in *read {
            let name = names[*n as usize - 3];
            assert!(
                out.stdout.contains(&format!("fd{n}=content-of-{name}\n")),
                "fd {n} must be the file {name}: {ctx}"
            );
        }
    }
}

/// A wrapper that execs berth with LISTEN_PID set to berth's own pid, as systemd's socket
/// activation does (runc takes LISTEN_FDS only with a LISTEN_PID of its own).
fn socket_activator(t: &Env) -> PathBuf {
    let p = t.dir.join("activate");
    fs::write(
        &p,
        format!("#!/bin/sh\nLISTEN_PID=$$ exec {BERTH} \"$@\"\n"),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn socket_activation_fds_are_announced_to_the_program() {
    let Some(t) = Env::new("listen_env") else {
        return;
    };
    // runc hands LISTEN_FDS fds on and tells the program: LISTEN_FDS=N and LISTEN_PID=1
    // are added to its environment, as sd_listen_fds(3) expects.
    let (a, b) = (content_file(&t, "a"), content_file(&t, "b"));
    let bundle = t.bundle(|c| {
        c["process"]["args"] = json!(["sh", "-c", "env | grep ^LISTEN_ | sort; echo ---"]);
    });
    let id = t.id("listen");
    let out = berth_bin_with_fds(
        &t,
        &socket_activator(&t),
        &["run", "--bundle", bundle.path(), &id],
        &[(&a, 3), (&b, 4)],
        &[("LISTEN_FDS", "2")],
    );
    out.ok();
    assert_eq!(out.stdout, "LISTEN_FDS=2\nLISTEN_PID=1\n---\n", "{out}");
    // Control: without socket activation, nothing is added.
    let out = t.run_sh("env | grep ^LISTEN_; echo ---", |_| {});
    out.ok();
    assert_eq!(out.stdout, "---\n", "{out}");
}

#[test]
fn create_then_start_keeps_preserved_fds() {
    let Some(t) = Env::new("fds_create") else {
        return;
    };
    let a = content_file(&t, "a");
    let b = content_file(&t, "b");
    let bundle = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", fd_script(&[3])]));
    let id = t.id("fdc");
    let created = berth_with_fds(
        &t,
        &[
            "create",
            "--preserve-fds",
            "1",
            "--bundle",
            bundle.path(),
            &id,
        ],
        &[(&a, 3), (&b, 4)],
        &[],
    );
    created.ok();
    t.berth(&["start", &id]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || created
            .stdout_now()
            .contains("fd3=")),
        "{:?}",
        created.stdout_now()
    );
    let text = created.stdout_now();
    assert_eq!(fd_list(&text), [0, 1, 2, 3], "{text:?}");
    assert!(text.contains("fd3=content-of-a\n"), "{text:?}");
}

// ---------------------------------------------------------------------------------------
// cwd (CVE-2024-21626)

/// A host directory the container must never see, with a marker file in it.
fn host_secret_dir(t: &Env) -> PathBuf {
    let d = t.dir.join("host-secret");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("MARKER-FILE"), "TOPSECRETCONTENT").unwrap();
    d
}

fn host_dir_unchanged(d: &Path) {
    let names: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["MARKER-FILE"], "the host directory was written to");
}

#[test]
fn cwd_through_a_leaked_fd_never_reaches_the_host() {
    let Some(t) = Env::new("cwd_leak") else {
        return;
    };
    let secret = host_secret_dir(&t);
    let dirfd = OwnedFd::from(fs::File::open(&secret).unwrap());
    let script = "pwd; ls -a; ls -a ..; cat MARKER-FILE ../MARKER-FILE 2>/dev/null; true";
    for n in [3, 7, 9] {
        for cwd in [format!("/proc/self/fd/{n}"), format!("/proc/1/fd/{n}")] {
            let bundle = t.bundle_own_rootfs(
                |_| {},
                |c| {
                    c["process"]["args"] = json!(["sh", "-c", script]);
                    c["process"]["cwd"] = json!(cwd);
                    c["root"]["readonly"] = json!(false);
                },
            );
            let id = t.id("cwd");
            let out = t.leaves_nothing(&id, || {
                berth_with_fds(
                    &t,
                    &["run", "--bundle", bundle.path(), &id],
                    &[(&dirfd, n)],
                    &[],
                )
            });
            let ctx = format!("cwd {cwd}, host dir on fd {n}\n{out}");
            assert!(
                !out.stdout.lines().any(|l| l == "MARKER-FILE"),
                "host dir listed: {ctx}"
            );
            assert!(
                !out.stdout.contains("TOPSECRETCONTENT"),
                "host file read: {ctx}"
            );
            if out.code() != 0 {
                assert!(out.stderr.contains("process.cwd"), "{ctx}");
            } else {
                // Then the cwd is a directory of the container's.
                let pwd = out.stdout.lines().next().unwrap_or("");
                assert!(
                    pwd.starts_with('/') && !pwd.contains("host-secret"),
                    "{ctx}"
                );
            }
            host_dir_unchanged(&secret);
        }
    }
}

#[test]
fn cwd_through_a_symlink_out_of_the_root_stays_inside() {
    let Some(t) = Env::new("cwd_symlink") else {
        return;
    };
    let secret = host_secret_dir(&t);
    let abs = secret.to_str().unwrap().to_string();
    let ups = format!("../../../../../../../..{abs}");
    let bundle = t.bundle_own_rootfs(
        |root| {
            std::os::unix::fs::symlink(&abs, root.join("abs-link")).unwrap();
            std::os::unix::fs::symlink(&ups, root.join("rel-link")).unwrap();
            std::os::unix::fs::symlink("/proc/self/cwd", root.join("proc-link")).unwrap();
        },
        |c| c["root"]["readonly"] = json!(false),
    );
    let script = "pwd -P; ls -a; cat MARKER-FILE 2>/dev/null; true";
    for cwd in [
        "/abs-link",
        "/rel-link",
        "/abs-link/sub",
        &format!("/../../../../..{abs}"),
        "/proc-link",
    ] {
        let mut c = bundle.config();
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["process"]["cwd"] = json!(cwd);
        bundle.write_config(&c);
        let id = t.id("cwd");
        let out = t.leaves_nothing(&id, || t.run(&bundle, &id));
        let ctx = format!("cwd {cwd}\n{out}");
        assert!(
            !out.stdout.lines().any(|l| l == "MARKER-FILE"),
            "host dir listed: {ctx}"
        );
        assert!(
            !out.stdout.contains("TOPSECRETCONTENT"),
            "host file read: {ctx}"
        );
        if out.code() != 0 {
            assert!(out.stderr.contains("process.cwd"), "{ctx}");
        }
        host_dir_unchanged(&secret);
    }
}

// ---------------------------------------------------------------------------------------
// terminal

#[test]
fn terminal_over_console_socket() {
    let Some(t) = Env::new("terminal") else {
        return;
    };
    let rx = ConsoleReceiver::new(&t.dir);
    let b = t.bundle(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 37, "width": 101});
        c["process"]["args"] = json!(["sh", "-c",
            "tty; stty size; stat -c '%F %t:%T' /dev/console; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; echo fds:; ls -1 /proc/$$/fd; echo end"]);
    });
    let id = t.id("tty");
    let out = t.berth(&[
        "run",
        "--console-socket",
        rx.sock(),
        "--bundle",
        b.path(),
        &id,
    ]);
    let got = rx.finish();
    out.ok();
    let (payload, text) = got.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        payload, "/dev/pts/0",
        "the name sent with the master\n{out}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/dev/pts/0", "{text:?}");
    assert_eq!(lines[1], "37 101", "consoleSize\n{text:?}");
    // 136 = 0x88: a Unix 98 pty peer.
    assert!(
        lines[2].starts_with("character special file 88:"),
        "/dev/console must be the pty\n{text:?}"
    );
    assert_eq!(lines[3], "all-ttys", "{text:?}");
    assert_eq!(fd_list(&text), [0, 1, 2], "{text:?}");
    assert_eq!(
        out.stdout, "",
        "the output went to the terminal, not berth's stdout"
    );
}

#[test]
fn terminal_with_create_and_start() {
    let Some(t) = Env::new("terminal_create") else {
        return;
    };
    let rx = ConsoleReceiver::new(&t.dir);
    let b = t.bundle(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!(["sh", "-c", "tty; stty size"]);
        c["process"]["consoleSize"] = json!({"height": 10, "width": 20});
    });
    let id = t.id("ttyc");
    t.create(&b, &id, &["--console-socket", rx.sock()]).ok();
    t.berth(&["start", &id]).ok();
    let (_, text) = rx.finish().unwrap();
    assert_eq!(text, "/dev/pts/0\n10 20\n");
    t.wait_status(&id, "stopped");
    t.berth(&["delete", &id]).ok();
}

// ---------------------------------------------------------------------------------------
// what this host cannot do

#[test]
fn lsm_labels_on_a_host_without_the_lsm_are_refused() {
    let Some(t) = Env::new("lsm") else { return };
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if !apparmor {
        let b = t.bundle(|c| c["process"]["apparmorProfile"] = json!("berth-test-profile"));
        let out = refused(&t, &b, &["process.apparmorProfile", "AppArmor"]);
        eprintln!("apparmorProfile on this host: {}", out.stderr.trim());
    }
    if !selinux {
        let b =
            t.bundle(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
        let out = refused(&t, &b, &["process.selinuxLabel", "SELinux"]);
        eprintln!("selinuxLabel on this host: {}", out.stderr.trim());
    }
    // Control: empty strings ask for nothing.
    let out = t.run_sh("echo ok", |c| {
        c["process"]["apparmorProfile"] = json!("");
        c["process"]["selinuxLabel"] = json!("");
    });
    out.ok();
    assert_eq!(out.stdout, "ok\n");
}
