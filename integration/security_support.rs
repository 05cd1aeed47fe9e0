//! Machinery shared by the attack tests (`security_*`): attack probes compiled with gcc at
//! test time, a copy of the berth binary to run containers with (an attack that works
//! overwrites only the copy), and [`HostState`], what the host looks like before an attack
//! and must still look like after it.
//!
//! Every attack test also runs a deliberately unsafe variant of the operation (done by the
//! test itself, by string path, or by a naive runtime) and checks that [`HostState`] sees
//! *that* change: so the test is shown to be able to fail.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{BERTH, DEADLINE, Env, Out, base_dir};
use crate::rootfs_support::describe;

// ---------------------------------------------------------------------------------------
// probes

/// Compile `source` (C) once per test process as `name`, with `flags` (`-static` …).
/// `None` (the test is skipped) when gcc is missing, except under CI, where that fails.
pub fn probe(name: &str, source: &str, flags: &[&str]) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let dir = base_dir().join("security-probes");
    fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    fs::write(&src, source).unwrap();
    let res = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .args(flags)
        .output();
    let got = match res {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "gcc could not build {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            eprintln!(
                "skipped: gcc could not build {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "gcc: {e}");
            eprintln!("skipped: no gcc ({e})");
            None
        }
    };
    built.insert(name.to_string(), got.clone());
    got
}

/// A static program, with glibc.
pub fn static_probe(name: &str, source: &str) -> Option<PathBuf> {
    probe(name, source, &["-static"])
}

/// Copy a probe into a rootfs at `dest` (e.g. `bin/race`), executable.
pub fn install(probe: &Path, rootfs: &Path, dest: &str) {
    let to = rootfs.join(dest);
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(probe, &to).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------
// a copy of berth

/// A copy of the berth binary in the test's directory: the containers of an attack on the
/// binary run with it, so a successful attack changes only the copy.
pub fn berth_copy(t: &Env) -> PathBuf {
    let copy = t.dir.join("berth-copy");
    fs::copy(BERTH, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
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

/// `bin --root ROOT args…` to completion, its output in files (never pipes: a container
/// it starts inherits them).
pub fn berth_bin(t: &Env, bin: &Path, args: &[&str]) -> Out {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = t.dir.join(format!("sec{n}.out"));
    let err = t.dir.join(format!("sec{n}.err"));
    let what = format!(
        "{} --root {} {}",
        bin.display(),
        t.root.display(),
        args.join(" ")
    );
    let mut child = Command::new(bin)
        .arg("--root")
        .arg(&t.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn berth");
    let status = wait_deadline(&mut child, DEADLINE)
        .unwrap_or_else(|| panic!("{what} did not finish within {DEADLINE:?}"));
    Out {
        what,
        status,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
        stdout_path: out,
    }
}

/// A cheap digest of a whole file, read through an open file from its start: what an
/// attack writes into that inode shows, and a rebuild that puts a new file at the path
/// does not.
fn digest_of(mut f: &fs::File) -> (u64, u64) {
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut h = DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
        len += n as u64;
    }
    (len, h.finish())
}

// ---------------------------------------------------------------------------------------
// the host, before and after

/// The host's mount table, as far as it is not other tests' business: every line except
/// mounts below `/tmp` that are not this test's own (other test processes and tools make
/// and remove mounts there meanwhile).
fn host_mounts(own: &Path) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap_or("");
            !point.starts_with("/tmp/") || Path::new(point).starts_with(own)
        })
        .map(str::to_string)
        .collect()
}

/// What an attack must not change: the host's mount table, the installed berth binary
/// (and the copy the test runs), and host paths the hostile image or config aims at.
pub struct HostState {
    own: PathBuf,
    mounts: Vec<String>,
    /// Kept open: the digest is of the inode the test started with.
    binaries: Vec<(PathBuf, fs::File, (u64, u64))>,
    paths: Vec<(PathBuf, BTreeMap<PathBuf, String>)>,
}

impl HostState {
    /// `watched`: host paths (files or whole directory trees) that must stay as they are.
    pub fn new(t: &Env, watched: &[&Path]) -> HostState {
        let mut binaries = Vec::new();
        for p in [PathBuf::from(BERTH), t.dir.join("berth-copy")] {
            if let Ok(f) = fs::File::open(&p) {
                let d = digest_of(&f);
                binaries.push((p, f, d));
            }
        }
        HostState {
            own: t.dir.clone(),
            mounts: host_mounts(&t.dir),
            binaries,
            paths: watched
                .iter()
                .map(|p| (p.to_path_buf(), describe(p)))
                .collect(),
        }
    }

    /// Every difference from the state recorded, in words; empty when nothing changed.
    pub fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let now = host_mounts(&self.own);
        for l in now.iter().filter(|l| !self.mounts.contains(l)) {
            out.push(format!("new host mount: {l}"));
        }
        for l in self.mounts.iter().filter(|l| !now.contains(l)) {
            out.push(format!("host mount gone: {l}"));
        }
        for (p, f, d) in &self.binaries {
            if &digest_of(f) != d {
                out.push(format!("binary {} changed", p.display()));
            }
        }
        for (p, before) in &self.paths {
            let after = describe(p);
            for (k, v) in before {
                match after.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => out.push(format!("{} changed: {v} -> {w}", k.display())),
                    None => out.push(format!("{} removed", k.display())),
                }
            }
            for k in after.keys().filter(|k| !before.contains_key(*k)) {
                out.push(format!("{} appeared: {}", k.display(), after[k]));
            }
        }
        out
    }

    /// Nothing changed; otherwise the test fails, showing `ctx`.
    pub fn assert_same(&self, ctx: &dyn std::fmt::Display) {
        let c = self.changes();
        assert!(c.is_empty(), "the host changed:\n{}\n{ctx}", c.join("\n"));
    }

    /// The deliberately unsafe variant changed the host, and [`HostState::changes`] saw
    /// it: the check is able to fail. `what` names the variant.
    pub fn assert_caught(&self, what: &str) -> Vec<String> {
        let c = self.changes();
        assert!(
            !c.is_empty(),
            "the unsafe variant ({what}) changed nothing the test can see: the test could not fail"
        );
        c
    }
}

/// A host directory holding one file, for a hostile image to aim at.
pub fn host_target(t: &Env, name: &str) -> (PathBuf, PathBuf) {
    let dir = t.dir.join(name);
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("precious");
    fs::write(&file, "precious host data\n").unwrap();
    (dir, file)
}

/// Poll `f` until it returns `Some`, up to `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
