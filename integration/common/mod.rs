//! Shared machinery for the end-to-end tests.
//!
//! - One busybox rootfs per test process ([`shared_rootfs`]), built on first use in
//!   `$TMPDIR/berth-it-<pid>/rootfs` and removed when the process exits.
//! - One [`Env`] per test: a private `--root` state directory and a temp directory for
//!   bundles and output files. Its `Drop` force-deletes every container the test made,
//!   kills and reaps what is left, and removes the directory, also when the test panics.
//! - Every berth command runs with its stdout and stderr sent to files, never to pipes: a
//!   container started by `create` or `run -d` inherits them and would otherwise keep a pipe
//!   open. Every command has a deadline, so a hang is a failure, not a stuck test run.
//!
//! The test process is made a child subreaper, as containerd's shim is for runc: the init
//! of a container made by `create` or `run -d` becomes our child when berth exits, and is
//! reaped here instead of lingering as a zombie.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// How long any single berth command may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `$TMPDIR/berth-it-<pid>`: everything this test process makes on disk lives below it.
pub fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        remove_stale_base_dirs();
        let d = std::env::temp_dir().join(format!("berth-it-{}", std::process::id()));
        fs::create_dir_all(&d).expect("create the test base directory");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(remove_base_dir_at_exit) };
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        d
    })
}

extern "C" fn remove_base_dir_at_exit() {
    let d = std::env::temp_dir().join(format!("berth-it-{}", std::process::id()));
    let _ = fs::remove_dir_all(d);
}

/// Base directories left by test processes that died without running their atexit hook.
fn remove_stale_base_dirs() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("berth-it-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

// ---------------------------------------------------------------------------------------
// rootfs

fn host_busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox not found: apt-get install busybox-static");
}

/// Whether an ELF file has a PT_INTERP program header, i.e. needs a dynamic loader.
fn is_dynamic_elf(path: &Path) -> bool {
    let data = fs::read(path).expect("read busybox");
    assert!(
        data.len() > 64 && &data[..4] == b"\x7fELF" && data[4] == 2,
        "{path:?}: not ELF64"
    );
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// Lay out a busybox root filesystem in `dir` (which must not exist yet).
pub fn build_rootfs(dir: &Path) {
    let bb = host_busybox();
    assert!(
        !is_dynamic_elf(&bb),
        "{bb:?} is dynamically linked: apt-get install busybox-static"
    );
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "etc",
        "tmp",
        "root",
        "opt/masked-dir",
        "opt/rodir",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(&bb, dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    assert!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join("bin").join(applet);
        if !applet.is_empty() && !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    // Fixtures for the masking tests: content that must disappear when masked.
    fs::write(dir.join("opt/masked-file"), "visible\n").unwrap();
    fs::write(dir.join("opt/masked-dir/inner"), "visible\n").unwrap();
}

/// The busybox rootfs shared by the tests of this process (absolute path).
pub fn shared_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let d = base_dir().join("rootfs");
        build_rootfs(&d);
        d
    })
}

/// `berth spec`'s config.json, made once: the starting point of every bundle.
fn spec_template() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let d = base_dir().join("spec");
        fs::create_dir_all(&d).unwrap();
        let st = Command::new(BERTH)
            .args(["spec", "--bundle"])
            .arg(&d)
            .status()
            .expect("run berth spec");
        assert!(st.success(), "berth spec failed");
        let text = fs::read_to_string(d.join("config.json")).unwrap();
        serde_json::from_str(&text).expect("berth spec writes JSON")
    })
}

// ---------------------------------------------------------------------------------------
// command results

/// The outcome of one berth command.
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
}

impl Out {
    /// The exit code; a berth killed by a signal fails the test.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "berth was killed by signal {:?}\n{self}",
                self.status.signal()
            ),
        }
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(self.code(), 0, "expected success\n{self}");
        self
    }

    /// The command must fail, and its stderr must contain `phrase`.
    pub fn fails_with(&self, phrase: &str) -> &Self {
        assert_ne!(self.code(), 0, "expected failure\n{self}");
        assert!(
            self.stderr.contains(phrase),
            "stderr must contain {phrase:?}\n{self}"
        );
        self
    }

    /// The stdout file read again now: a container started later writes into it.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

/// A berth command running in the background (a foreground `run` the test signals).
pub struct Bg {
    pub what: String,
    pub child: Child,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Bg {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Wait for the command to end; fails the test if it outlives `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let status = wait_deadline(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("{} did not exit within {timeout:?}", self.what));
        Out {
            what: self.what.clone(),
            status,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path.clone(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("wait for berth") {
            return Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Poll `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// processes and host observations

/// Whether `pid` is a live process (present in /proc and not a zombie).
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Parent pid and state letter of `pid`, from /proc/<pid>/stat.
fn ppid_and_state(pid: i32) -> Option<(i32, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((rest.next()?.parse().ok()?, state))
}

/// Reap the dead children of ours that lived in a nested pid namespace: processes of a
/// container, reparented here when the berth that made them exited. Never a child of this
/// process's own pid namespace (the berth commands the tests run and wait for).
pub fn reap_container_orphans() {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if ppid_and_state(pid) != Some((me, 'Z')) {
            continue;
        }
        let nested = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("NSpid:")
                        .map(|v| v.split_whitespace().count())
                })
            })
            .is_some_and(|levels| levels > 1);
        if nested {
            // SAFETY: waitpid on a zombie child of ours; status is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut 0, libc::WNOHANG) };
        }
    }
}

/// Reap `pid` if it is a dead child of ours (a container init reparented to this
/// subreaper), waiting up to `patience` for it to die. Never waits on a live process
/// beyond that, and never touches another process's children.
pub fn reap(pid: i32, patience: Duration) {
    if pid <= 0 {
        return;
    }
    let me = std::process::id() as i32;
    wait_until(patience, || match ppid_and_state(pid) {
        Some((ppid, 'Z')) if ppid == me => {
            // SAFETY: waitpid on a zombie child of ours; status is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut 0, libc::WNOHANG) };
            true
        }
        Some((ppid, _)) => ppid != me,
        None => true,
    });
}

/// One line of /proc/<pid>/mountinfo.
#[derive(Debug, Clone)]
pub struct MountLine {
    pub mount_point: String,
    pub options: Vec<String>,
    pub fstype: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            Some(MountLine {
                mount_point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_string).collect(),
                fstype: post.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// Everything a failed command must leave as it found it.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub mountinfo: Vec<String>,
    pub state_dir: Vec<String>,
    pub cgroups: Vec<PathBuf>,
    /// Processes whose root or working directory lies in the test's directory.
    pub processes: Vec<String>,
}

/// `pid: root|cwd …` for every live process whose root or working directory is at or
/// below `dir`, or is one of the `<dir>/<bundle>/rootfs` directories. The second form
/// catches a pivoted init: its root reads as "/" through readlink, but is the rootfs's
/// inode.
pub fn processes_under(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let rootfs_ids: Vec<(u64, u64)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| fs::metadata(e.path().join("rootfs")).ok())
                .map(|m| (m.dev(), m.ino()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        for link in ["root", "cwd"] {
            let p = e.path().join(link);
            let by_path = fs::read_link(&p).is_ok_and(|t| t.starts_with(dir));
            let by_inode = fs::metadata(&p).is_ok_and(|m| rootfs_ids.contains(&(m.dev(), m.ino())));
            if (by_path || by_inode) && alive(pid) {
                out.push(format!("{pid}: {link} in {}", dir.display()));
                break;
            }
        }
    }
    out.sort();
    out
}

/// Paths under /sys/fs/cgroup whose name contains `needle` (not following symlinks).
pub fn cgroups_named(needle: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, needle: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if e.file_name().to_string_lossy().contains(needle) {
                out.push(e.path());
            }
            if t.is_dir() {
                walk(&e.path(), needle, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), needle, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// bundles

pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.dir.join("config.json")).unwrap()).unwrap()
    }

    pub fn write_config(&self, c: &Value) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_string_pretty(c).unwrap(),
        )
        .unwrap();
    }
}

/// Remove the namespace `typ` from a config's `linux.namespaces`.
pub fn drop_namespace(c: &mut Value, typ: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

/// Append a mount to a config.
pub fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

// ---------------------------------------------------------------------------------------
// the per-test environment

/// One test's world. Make it first in a test, so it is dropped last.
pub struct Env {
    /// Temp directory of this test: bundles, output files, host-side mount sources.
    pub dir: PathBuf,
    /// The `--root` state directory.
    pub root: PathBuf,
    /// Containers to force-delete at the end, with their init pid once known.
    containers: Mutex<Vec<(String, i32)>>,
}

impl Env {
    /// `None` (after printing why) when not root; outside CI that skips the test.
    pub fn new(name: &str) -> Option<Env> {
        if !nix::unistd::geteuid().is_root() {
            if std::env::var_os("CI").is_some() {
                panic!("{name}: the integration tests need root, and CI is set: refusing to skip");
            }
            eprintln!("skipped: needs root ({name})");
            return None;
        }
        let dir = base_dir().join(format!("t{}-{name}", next()));
        fs::create_dir_all(&dir).unwrap();
        let root = dir.join("state");
        Some(Env {
            dir,
            root,
            containers: Mutex::new(Vec::new()),
        })
    }

    /// A fresh container id, unique across parallel tests, force-deleted at the end.
    pub fn id(&self, tag: &str) -> String {
        let id = format!("it-{}-{}-{tag}", std::process::id(), next());
        self.track(&id);
        id
    }

    /// Remember `id` for clean-up (for ids not made by [`Env::id`]).
    pub fn track(&self, id: &str) {
        self.containers.lock().unwrap().push((id.to_string(), 0));
    }

    fn note_pid(&self, id: &str, pid: i32) {
        for (i, p) in self.containers.lock().unwrap().iter_mut() {
            if i == id {
                *p = pid;
            }
        }
    }

    /// A new bundle directory in this test's dir; `edit` changes `berth spec`'s config,
    /// already set to no terminal and to the shared rootfs.
    pub fn bundle(&self, edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = self.dir.join(format!("bundle{}", next()));
        fs::create_dir_all(&dir).unwrap();
        let mut c = spec_template().clone();
        c["process"]["terminal"] = json!(false);
        c["root"]["path"] = json!(shared_rootfs().to_str().unwrap());
        edit(&mut c);
        let b = Bundle { dir };
        b.write_config(&c);
        b
    }

    /// A bundle with its own rootfs (`<bundle>/rootfs`), prepared by `prep` before use.
    pub fn bundle_own_rootfs(
        &self,
        prep: impl FnOnce(&Path),
        edit: impl FnOnce(&mut Value),
    ) -> Bundle {
        let b = self.bundle(|c| {
            c["root"]["path"] = json!("rootfs");
            edit(c);
        });
        let rootfs = b.dir.join("rootfs");
        build_rootfs(&rootfs);
        prep(&rootfs);
        b
    }

    fn command(&self, args: &[&str]) -> (Command, String, PathBuf, PathBuf) {
        let n = next();
        let out = self.dir.join(format!("cmd{n}.out"));
        let err = self.dir.join(format!("cmd{n}.err"));
        let mut cmd = Command::new(BERTH);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let what = format!("berth --root {} {}", self.root.display(), args.join(" "));
        (cmd, what, out, err)
    }

    /// Run `berth --root ROOT args…` to completion (at most [`DEADLINE`]).
    pub fn berth(&self, args: &[&str]) -> Out {
        self.try_berth(args, DEADLINE).unwrap_or_else(|| {
            panic!(
                "berth {} did not finish within {DEADLINE:?}",
                args.join(" ")
            )
        })
    }

    /// As [`Env::berth`], but `None` on timeout instead of a panic (usable in `Drop`).
    pub fn try_berth(&self, args: &[&str], timeout: Duration) -> Option<Out> {
        let (mut cmd, what, out, err) = self.command(args);
        let mut child = cmd.spawn().expect("spawn berth");
        let status = wait_deadline(&mut child, timeout)?;
        Some(Out {
            what,
            status,
            stdout: fs::read_to_string(&out).unwrap_or_default(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
            stdout_path: out,
        })
    }

    /// Start `berth --root ROOT args…` and return without waiting.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        let (mut cmd, what, out, err) = self.command(args);
        let child = cmd.spawn().expect("spawn berth");
        Bg {
            what,
            child,
            stdout_path: out,
            stderr_path: err,
        }
    }

    /// `berth create --bundle B [extra…] ID`. On success the init's pid is recorded.
    pub fn create(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        let mut args = vec!["create", "--bundle", b.path()];
        args.extend_from_slice(extra);
        args.push(id);
        let out = self.berth(&args);
        if out.status.success() {
            self.record_pid(id);
        }
        out
    }

    /// `create`, which must succeed.
    pub fn create_ok(&self, b: &Bundle, id: &str) -> Out {
        let out = self.create(b, id, &[]);
        out.ok();
        out
    }

    /// `run -d --bundle B ID`, which must succeed.
    pub fn run_detached(&self, b: &Bundle, id: &str) -> Out {
        let out = self.berth(&["run", "-d", "--bundle", b.path(), id]);
        out.ok();
        self.record_pid(id);
        out
    }

    /// `run --bundle B ID` in the foreground, to completion.
    pub fn run(&self, b: &Bundle, id: &str) -> Out {
        self.berth(&["run", "--bundle", b.path(), id])
    }

    /// Run `sh -c script` in a fresh container (config changed by `edit`) in the
    /// foreground and return its output.
    pub fn run_sh(&self, script: &str, edit: impl FnOnce(&mut Value)) -> Out {
        let b = self.bundle(|c| {
            c["process"]["args"] = json!(["sh", "-c", script]);
            edit(c);
        });
        let id = self.id("sh");
        self.run(&b, &id)
    }

    fn record_pid(&self, id: &str) {
        if let Some(o) = self.try_berth(&["state", id], DEADLINE)
            && let Ok(v) = serde_json::from_str::<Value>(&o.stdout)
            && let Some(pid) = v["pid"].as_i64()
            && pid > 0
        {
            self.note_pid(id, pid as i32);
        }
    }

    /// `berth state ID`, which must succeed, parsed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.berth(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON: {e}\n{out}"))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Wait until `berth state ID` reports `want`; fails the test after 10 s.
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(10), || {
            last = self.status(id);
            last == want
        });
        assert!(
            ok,
            "container {id} did not become {want:?}; last status {last:?}"
        );
    }

    pub fn snapshot(&self, id: &str) -> Snapshot {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let mut state_dir: Vec<String> = match fs::read_dir(&self.root) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        state_dir.sort();
        Snapshot {
            mountinfo,
            state_dir,
            cgroups: cgroups_named(id),
            processes: processes_under(&self.dir),
        }
    }

    /// `step` must leave mounts, the state directory and cgroups exactly as they were.
    pub fn leaves_nothing<T>(&self, id: &str, step: impl FnOnce() -> T) -> T {
        let before = self.snapshot(id);
        let r = step();
        let after = self.snapshot(id);
        assert_eq!(
            before.mountinfo.len(),
            after.mountinfo.len(),
            "mount count changed (before/after differ)"
        );
        assert_eq!(before.mountinfo, after.mountinfo, "host mounts changed");
        assert_eq!(
            before.state_dir, after.state_dir,
            "the --root state directory changed"
        );
        assert_eq!(
            before.cgroups, after.cgroups,
            "cgroups named after {id} changed"
        );
        assert_eq!(
            before.processes, after.processes,
            "processes left in the test's directory"
        );
        r
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let list = std::mem::take(&mut *self.containers.lock().unwrap());
        for (id, known) in list {
            // berth checks the init's start time, so a pid it reports is really ours.
            let live = self
                .try_berth(&["state", &id], Duration::from_secs(10))
                .and_then(|o| serde_json::from_str::<Value>(&o.stdout).ok())
                .and_then(|v| v["pid"].as_i64())
                .unwrap_or(0) as i32;
            // Processes `exec -d` left behind are reparented to this (subreaper) process
            // when their berth exits. Dead, they stay zombies of ours, and the container's
            // pid-namespace init cannot finish dying (nor `delete --force` end) until they
            // are reaped: kill everything, reap them, then delete.
            if live > 0 {
                let _ = self.try_berth(&["kill", "--all", &id, "KILL"], Duration::from_secs(10));
                wait_until(Duration::from_secs(3), || {
                    reap_container_orphans();
                    !alive(live)
                });
            }
            let _ = self.try_berth(&["delete", "--force", &id], Duration::from_secs(20));
            if live > 0 && alive(live) {
                // SAFETY: kill(2) on the init berth reported for this container just now.
                unsafe { libc::kill(live, libc::SIGKILL) };
            }
            reap(live, Duration::from_secs(5));
            reap(known, Duration::ZERO);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
