//! What the engine tests share: the busybox image, the argv-logging wrapper around berth
//! and the contract check on what it logged, commands with deadlines (also under a pty),
//! daemons stopped by pid, and the clean-up of what engines leave on the host (processes
//! found by a path only this test uses, mounts below the test's directory, cgroups named
//! after the test).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{BERTH, Env, Out, alive, base_dir, reap, wait_until};

/// How long one engine command may take. Engines start daemons, shims and conmon, and
/// share two CPUs with the rest of the test suite, so this is far above what they need.
pub const ENGINE_DEADLINE: Duration = Duration::from_secs(120);

/// The test's [`Env`] when it can run: as root, with `tools` (binary, Debian package)
/// installed. Outside CI a missing tool skips the test with a message; in CI (where
/// `.ci/run` installs the packages) it fails it.
pub fn engine_env(name: &str, tools: &[(&str, &str)]) -> Option<Env> {
    let t = Env::new(name)?;
    let missing: Vec<String> = tools
        .iter()
        .filter(|(bin, _)| !Path::new(bin).exists())
        .map(|(bin, pkg)| format!("{bin} (apt-get install {pkg})"))
        .collect();
    if missing.is_empty() {
        return Some(t);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{name}: missing {}, and CI is set: refusing to skip",
            missing.join(", ")
        );
    }
    eprintln!("skipped: {name} needs {}", missing.join(", "));
    None
}

/// The busybox image tarball (OCI layout and docker-archive in one file), built once per
/// test process by `hack/busybox-image.sh`.
pub fn busybox_image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = base_dir().join("busybox-image.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/busybox-image.sh");
        let o = run(
            Command::new(script).arg(&out),
            &base_dir().join("image"),
            Duration::from_secs(60),
        );
        o.ok();
        out
    })
}

/// The image's name once loaded, in every engine.
pub const IMAGE: &str = "docker.io/library/busybox:berth";

// ---------------------------------------------------------------------------------------
// commands

/// Run `cmd` to completion within `timeout`, stdout and stderr to files named after
/// `stem` (never pipes: a daemon the command starts could inherit them and keep them
/// open), stdin from /dev/null. Killed and failed on timeout.
pub fn run(cmd: &mut Command, stem: &Path, timeout: Duration) -> Out {
    let o = run_for(cmd, stem, timeout);
    assert!(o.1, "did not finish within {timeout:?}\n{}", o.0);
    o.0
}

/// As [`run`], but `None` on timeout or when it cannot start: for clean-up in `Drop`.
pub fn try_run(cmd: &mut Command, stem: &Path, timeout: Duration) -> Option<Out> {
    let o = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_for(cmd, stem, timeout)));
    match o {
        Ok((out, true)) => Some(out),
        _ => None,
    }
}

/// The outcome, and whether the command finished in time (a killed one reads as killed by
/// SIGKILL).
fn run_for(cmd: &mut Command, stem: &Path, timeout: Duration) -> (Out, bool) {
    let what = format!("{cmd:?}");
    let n = next_n();
    let out_path = PathBuf::from(format!("{}.{n}.out", stem.display()));
    let err_path = PathBuf::from(format!("{}.{n}.err", stem.display()));
    if let Some(d) = out_path.parent() {
        fs::create_dir_all(d).unwrap();
    }
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = wait_or_kill(&mut child, timeout);
    let out = Out {
        what,
        status: status.unwrap_or(ExitStatus::from_raw(libc::SIGKILL)),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        stdout_path: out_path,
    };
    (out, status.is_some())
}

fn next_n() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Wait for `child` at most `timeout`; on timeout kill it and return `None`.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A command run under a new pseudo-terminal of `size` (rows, columns), its controlling
/// terminal, driven like a person at a keyboard: for each `(wait_for, send)` step, wait
/// until the output since the previous step shows `wait_for`, then type `send`. Returns
/// the whole output (`\r` removed) and the exit status; fails the test on timeout, with
/// the transcript.
pub fn run_in_pty(
    mut cmd: Command,
    size: (u16, u16),
    steps: &[(&str, &str)],
    timeout: Duration,
) -> (String, ExitStatus) {
    let ws = nix::pty::Winsize {
        ws_row: size.0,
        ws_col: size.1,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let (master, slave): (OwnedFd, OwnedFd) = (pty.master, pty.slave);
    for fd in [&master, &slave] {
        // SAFETY: fcntl on descriptors we own. The command gets the slave as 0, 1 and 2
        // only, and neither end outlives its exec under another number.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    // Dropping the Command closes our copies of the slave, so reads on the master end
    // with EIO once the command and its children have closed theirs.
    drop(cmd);
    let fd = master.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let end = Instant::now() + timeout;
    let mut raw = Vec::new();
    let mut step = 0;
    let mut seen = 0; // output already matched by earlier steps
    let mut status = None;
    let mut master_open = true;
    while Instant::now() < end && (status.is_none() || master_open) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        let mut buf = [0u8; 4096];
        // SAFETY: read into a buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            raw.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
            master_open = false;
        }
        if let Some((want, send)) = steps.get(step) {
            let text = String::from_utf8_lossy(&raw[seen..]).replace('\r', "");
            if text.contains(want) {
                // What is shown so far is used up: the next step waits for new output.
                seen = raw.len();
                let mut f = fs::File::from(master.try_clone().unwrap());
                f.write_all(send.as_bytes()).expect("write to the pty");
                step += 1;
            }
        }
        if status.is_none() {
            status = child.try_wait().unwrap();
            if status.is_some() {
                // Drain what is left for a moment, even if a daemonized child still holds
                // the terminal open.
                let drain = Instant::now() + Duration::from_millis(500);
                if drain < end && master_open {
                    while Instant::now() < drain {
                        // SAFETY: read into a buffer of the given length.
                        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                        if n > 0 {
                            raw.extend_from_slice(&buf[..n as usize]);
                        } else if n == 0
                            || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).replace('\r', "");
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what} under a pty did not finish within {timeout:?} (at step {step} of {})\n--- terminal ---\n{text}",
            steps.len()
        );
    };
    assert_eq!(
        step,
        steps.len(),
        "{what}: output never showed {:?}\n--- terminal ---\n{text}",
        steps.get(step).map(|s| s.0)
    );
    (text, status)
}

// ---------------------------------------------------------------------------------------
// daemons and what they leave behind

/// A daemon started by a test: stopped by its pid (TERM, then KILL) when dropped.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
    /// How long TERM gets before KILL.
    pub grace: Duration,
}

impl Daemon {
    /// Start `cmd` with its output to `log`, then wait until `ready()` holds.
    pub fn start(
        name: &'static str,
        cmd: &mut Command,
        log: PathBuf,
        grace: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Daemon {
        let f = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        let mut d = Daemon {
            name,
            child,
            log,
            grace,
        };
        let up = wait_until(Duration::from_secs(60), || {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("{name} exited at start: {st}\n{}", d.log_tail());
            }
            ready()
        });
        assert!(up, "{name} not ready after 60s\n{}", d.log_tail());
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- {} log (last lines) ---\n{}",
            self.name,
            lines[from..].join("\n")
        )
    }

    /// TERM, up to `grace` to exit, then KILL; reaped either way.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        if wait_or_kill(&mut self.child, self.grace).is_none() {
            eprintln!(
                "{}: did not stop on TERM within {:?}; killed",
                self.name, self.grace
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run `cmd` in a mount namespace of its own, a slave of the host's: the host's mounts
/// appear in it, the mounts the engine makes there (container roots, image layers, shm,
/// network namespaces) never appear in the host's. The host's mount table, which other
/// tests compare before and after their own steps, stays as it is while engines run, and
/// their mounts go away with the last process in the namespace, also after a failure.
pub fn in_new_mount_ns(cmd: &mut Command) -> &mut Command {
    // SAFETY: unshare and mount are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Run `cmd` in the mount namespace of process `pid` (see [`in_new_mount_ns`]): podman's
/// commands share one, dockerd shares its containerd's (the roots dockerd mounts must
/// be visible to the shims).
pub fn in_mount_ns_of(cmd: &mut Command, pid: i32) -> &mut Command {
    let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .unwrap_or_else(|e| panic!("mount namespace of {pid}: {e}"));
    // SAFETY: setns is async-signal-safe; the descriptor stays open until the exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Live processes whose command line contains `needle` (a path only this test uses).
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c: Vec<u8> = c.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
                    String::from_utf8_lossy(&c).contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILL every process whose command line contains `needle` (shims, conmon: the
/// engine started them for this test), and reap those that were re-parented to us.
pub fn kill_processes_with(needle: &str) -> Vec<i32> {
    let pids = pids_with_cmdline(needle);
    for &pid in &pids {
        // SAFETY: kill(2) on a pid just found running with our test's private path.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for &pid in &pids {
        reap(pid, Duration::from_secs(5));
    }
    pids
}

/// Reap the exited shims and conmons that were re-parented to this test process (it is a
/// child subreaper, see common). Only those: other children belong to other tests.
pub fn reap_engine_orphans() {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for pid in rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
        if state == Some("Z")
            && ppid == Some(me)
            && (comm.starts_with("containerd-shim") || comm == "conmon")
        {
            reap(pid, Duration::ZERO);
        }
    }
}

/// Detach every mount at or below `dir` (deepest first), so removing `dir` never reaches
/// into a container's root or an image layer through a mount left by a failed test.
pub fn unmount_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut gone = Vec::new();
    for _ in 0..10 {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| p.replace("\\040", " "))
            .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
            .collect();
        if points.is_empty() {
            break;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
            gone.push(p);
        }
    }
    gone
}

/// The cgroup directories named `name` at the top of each hierarchy (cgroup v1
/// controllers, the hybrid unified mount, or a pure v2 root).
fn top_cgroups(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = vec![root.join(name)];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path().join(name));
            }
        }
    }
    out.retain(|p| p.is_dir());
    out
}

/// Kill what is left in the cgroups named `name` (top level, every hierarchy), then remove
/// them, innermost first. Returns the directories that existed.
pub fn remove_cgroups(name: &str) -> Vec<PathBuf> {
    fn dirs_below(d: &Path, out: &mut Vec<PathBuf>) {
        out.push(d.to_path_buf());
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs_below(&e.path(), out);
                }
            }
        }
    }
    let tops = top_cgroups(name);
    let mut all = Vec::new();
    for t in &tops {
        dirs_below(t, &mut all);
    }
    let mut killed = Vec::new();
    for d in &all {
        for pid in fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a process in a cgroup named after this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed.push(pid);
        }
    }
    // A container's init whose shim or conmon is gone was re-parented to this subreaper.
    for pid in killed {
        reap(pid, Duration::from_secs(5));
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in &all {
        // A cgroup empties asynchronously after its last process is killed.
        wait_until(Duration::from_secs(5), || {
            fs::remove_dir(d).is_ok() || !d.exists()
        });
    }
    tops
}

// ---------------------------------------------------------------------------------------
// the argv record

/// The logging wrapper around berth (made by `hack/argv-wrapper.sh`) and its log.
pub struct Wrapper {
    pub path: PathBuf,
    pub log: PathBuf,
}

impl Wrapper {
    /// `<dir>/<name>`, a wrapper that logs to `<dir>/<name>.argv` and execs berth.
    pub fn new(dir: &Path, name: &str) -> Wrapper {
        fs::create_dir_all(dir).unwrap();
        let w = Wrapper {
            path: dir.join(name),
            log: dir.join(format!("{name}.argv")),
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/argv-wrapper.sh");
        run(
            Command::new(script).arg(&w.path).arg(&w.log).arg(BERTH),
            &dir.join("wrapper"),
            Duration::from_secs(30),
        )
        .ok();
        w
    }

    pub fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// The calls logged so far, one argv per line.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// How a recorded argv is turned into the placeholders of engine-calls.md: every
/// 64-hex-digit id first, then literal paths and ids (longest first; they may contain the
/// hex placeholders), then per-token patterns for the names engines make up (temp files,
/// sockets, exec session numbers).
pub struct Placeholders {
    literals: Vec<(String, String)>,
    /// The placeholder for a 64-hex-digit id (containers vs. exec sessions).
    hex: Box<dyn Fn(&str) -> &'static str>,
}

impl Placeholders {
    pub fn new(hex: impl Fn(&str) -> &'static str + 'static) -> Placeholders {
        Placeholders {
            literals: Vec::new(),
            hex: Box::new(hex),
        }
    }

    pub fn literal(&mut self, value: impl AsRef<str>, placeholder: &str) -> &mut Self {
        self.literals
            .push((value.as_ref().to_string(), placeholder.to_string()));
        self
    }

    pub fn apply(&self, line: &str) -> String {
        let mut lits = self.literals.clone();
        lits.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        let mut s = replace_hex_ids(line, &*self.hex);
        for (v, p) in &lits {
            s = s.replace(v.as_str(), p);
        }
        s.split(' ').map(token_shape).collect::<Vec<_>>().join(" ")
    }
}

fn replace_hex_ids(s: &str, hex: &dyn Fn(&str) -> &'static str) -> String {
    let b = s.as_bytes();
    let is_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let mut j = i;
        while j < b.len() && is_hex(b[j]) {
            j += 1;
        }
        if j - i == 64 {
            out.push_str(hex(&s[i..j]));
            i = j;
        } else if j > i {
            out.push_str(&s[i..j]);
            i = j;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Names engines make up, as engine-calls.md writes them.
fn token_shape(tok: &str) -> String {
    let file = tok.rsplit('/').next().unwrap_or(tok);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if let Some(n) = file.strip_prefix("runc-process")
        && digits(n)
    {
        return "<TMP>/runc-process<N>".into();
    }
    if file == "pty.sock"
        && let Some(dir) = tok.rsplit('/').nth(1)
        && dir.strip_prefix("pty").is_some_and(digits)
    {
        return "<TMP>/pty<N>/pty.sock".into();
    }
    if file.starts_with("conmon-term.") {
        return "<TMP>/conmon-term.<X>".into();
    }
    if let Some((head, n)) = tok.rsplit_once("exec-process-")
        && digits(n)
    {
        return format!("{head}exec-process-<N>");
    }
    tok.to_string()
}

/// Print the calls berth received from `engine`, as engine-calls.md counts them, and
/// fail if one has a shape that engine-calls.md does not record for it (runc's contract).
pub fn check_contract(engine: &str, calls: &[String], ph: &Placeholders, contract: &[&str]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls {
        *counts.entry(ph.apply(c)).or_default() += 1;
    }
    let mut report = format!("berth calls from {engine} (argv after the binary's name):\n");
    let mut unknown = Vec::new();
    for (shape, n) in &counts {
        let known = contract.contains(&shape.as_str());
        report.push_str(&format!(
            "{n:>8} {shape}{}\n",
            if known {
                ""
            } else {
                "   <- not in engine-calls.md"
            }
        ));
        if !known {
            unknown.push(shape.clone());
        }
    }
    report.push_str("raw:\n");
    for c in calls {
        report.push_str(&format!("    {c}\n"));
    }
    println!("{report}");
    assert!(
        unknown.is_empty(),
        "{engine} called berth in ways runc was not called (engine-calls.md):\n{report}"
    );
}

/// Whether overlay mounts can have their layers in `dir`: not when `dir` is itself on
/// overlayfs (a CI runner inside a container), where engines need their copying
/// snapshotter or storage driver (native, vfs) instead.
pub fn overlay_usable(dir: &Path) -> bool {
    fs::create_dir_all(dir).unwrap();
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: a plain C struct, all zeroes valid; statfs with a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type != libc::OVERLAYFS_SUPER_MAGIC
}
