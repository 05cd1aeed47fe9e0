//! The state store: `<root>/<id>/state.json`, one directory a container.
//!
//! - The directory is 0700 and the file 0600; the file is replaced atomically (write a
//!   temporary file, fsync, rename), so a reader sees the old state or the new one.
//! - Every command that changes a container holds an exclusive `flock` on its directory, so
//!   two commands on one id never interleave. `create` holds it from `mkdir` to the end.
//! - The status is never stored: it is derived from the live init (its pid *and* its start
//!   time, so a recycled pid never passes for our container) and from the start socket.

mod id;
mod proc_stat;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::err;
use crate::error::{Context, Result};

pub use id::validate_id;
pub use proc_stat::proc_stat;

/// The cgroup record, written as soon as `create` has made the cgroup (before state.json).
pub const CGROUP_FILE: &str = "cgroup.json";

/// Name of the unix socket on which a created init waits for `start`.
pub const START_SOCKET: &str = "start.sock";
const STATE_FILE: &str = "state.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Running or created, with its cgroup frozen (`pause`).
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What berth keeps about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the init was made: pid reuse guard.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// config.json hooks, for poststart (`start`) and poststop (`delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's config.json as created: `exec` joins its namespaces and applies its
    /// process attributes and seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<oci_spec::runtime::Spec>,
    /// The container's cgroup, for delete, kill --all, pause, ps, update, events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::Record>,
}

impl State {
    /// The state JSON given to hooks.
    pub fn hook_json(&self, status: Status) -> String {
        crate::hooks::state_json_of(
            &self.oci_version,
            &self.id,
            status.as_str(),
            self.pid,
            &self.bundle,
            &self.annotations,
        )
    }
}

/// The JSON `berth state` prints, field for field as runc's.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StateReport<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

/// A container directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub id: String,
    /// The directory, open; locked unless the container was only peeked at.
    dirfd: Dir,
}

#[derive(Debug)]
enum Dir {
    Locked(Flock<File>),
    Open(File),
}

impl Dir {
    fn file(&self) -> &File {
        match self {
            Dir::Locked(f) => f,
            Dir::Open(f) => f,
        }
    }
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: PathBuf) -> Self {
        Store { root }
    }

    /// Make `<root>/<id>` for a new container and lock it. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_ctx(|| format!("create state root {}", self.root.display()))?;
        let dir = self.root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(err!("container with id {id} already exists"));
            }
            Err(e) => return Err(e).ctx(format!("create state directory {}", dir.display())),
        }
        match lock_dir(&dir) {
            Ok(lock) => Ok(Container {
                dir,
                id: id.to_string(),
                dirfd: Dir::Locked(lock),
            }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Lock an existing container's directory.
    pub fn open(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let lock = match lock_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                return Err(err!("container {id} does not exist"));
            }
            Err(e) => return Err(e),
        };
        // A `delete` that held the lock before us may have removed the directory.
        if !dir.exists() {
            return Err(err!("container {id} does not exist"));
        }
        Ok(Container {
            dir,
            id: id.to_string(),
            dirfd: Dir::Locked(lock),
        })
    }

    /// Open an existing container without locking it: for reading its state, which is
    /// replaced atomically, and for signalling it.
    pub fn peek(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.root.join(id);
        match open_dir(&dir) {
            Ok(f) => Ok(Container {
                dir,
                id: id.to_string(),
                dirfd: Dir::Open(f),
            }),
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                Err(err!("container {id} does not exist"))
            }
            Err(e) => Err(e),
        }
    }

    /// Ids of every container under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx(format!("read {}", self.root.display())),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_ctx(|| format!("open state directory {}", dir.display()))
}

fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let f = open_dir(dir)?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_ctx(|| format!("lock state directory {}", dir.display()))
}

impl Container {
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn start_socket(&self) -> PathBuf {
        self.dir.join(START_SOCKET)
    }

    /// A name of the start socket that fits `sun_path` (108 bytes): the plain path when
    /// short enough, else the same file through this directory's open fd.
    pub fn start_socket_addr(&self) -> PathBuf {
        let plain = self.start_socket();
        if plain.as_os_str().len() < 100 {
            plain
        } else {
            PathBuf::from(format!("/proc/self/fd/{}/{START_SOCKET}", self.dir_fd()))
        }
    }

    /// The raw fd of the open state directory (and of its lock).
    pub fn dir_fd(&self) -> i32 {
        self.dirfd.file().as_raw_fd()
    }

    /// Release the lock but keep the container (`run` in the foreground, while it waits).
    pub fn unlock(self) {}

    /// The stored state, or `None` while `create` has not written it yet.
    pub fn load(&self) -> Result<Option<State>> {
        let path = self.state_path();
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(format!("read {}", path.display())),
        };
        let st = serde_json::from_slice(&data).with_ctx(|| format!("parse {}", path.display()))?;
        Ok(Some(st))
    }

    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st)?;
        write_atomic(&self.state_path(), &data, 0o600)
    }

    /// The status of this container now.
    pub fn status(&self, st: Option<&State>) -> Status {
        let Some(st) = st else {
            return Status::Creating;
        };
        if !init_alive(st) {
            return Status::Stopped;
        }
        if crate::cgroups::is_paused(st) {
            return Status::Paused;
        }
        if self.start_socket().exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Remove the state directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.dir).with_ctx(|| format!("remove {}", self.dir.display()))
    }
}

/// Whether the init recorded in `st` is alive: same pid, same start time, not a zombie.
pub fn init_alive(st: &State) -> bool {
    st.pid > 0
        && matches!(proc_stat(st.pid), Ok(s) if s.start_time == st.init_start_time && s.state != 'Z' && s.state != 'X')
}

/// Replace `path` with `data` atomically: temporary file in the same directory, then rename.
/// No fsync: readers never see a partial file either way, and nothing this state describes
/// (processes, cgroups, mounts) outlives a crash of the host; an fsync on a disk-backed
/// `--root` only made every create wait for the journal (0.5–2 ms here).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .with_ctx(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_store() -> (Store, PathBuf) {
        let base = std::env::temp_dir().join(format!(
            "berth-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&base);
        (Store::new(base.join("root")), base)
    }

    fn sample(id: &str) -> State {
        State {
            oci_version: "1.1.0".into(),
            id: id.into(),
            pid: std::process::id() as i32,
            init_start_time: proc_stat(std::process::id() as i32).unwrap().start_time,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
            hooks: None,
            config: None,
            cgroup: None,
        }
    }

    #[test]
    fn create_save_load_remove() {
        let (store, base) = tmp_store();
        let c = store.create("c1").unwrap();
        assert_eq!(c.status(c.load().unwrap().as_ref()), Status::Creating);
        let st = sample("c1");
        c.save(&st).unwrap();
        let meta = fs::metadata(c.state_path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&c.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let back = c.load().unwrap().unwrap();
        assert_eq!(back.pid, st.pid);
        // Our own process is alive and has no start socket: running.
        assert_eq!(c.status(Some(&back)), Status::Running);
        drop(c);
        assert!(
            store
                .create("c1")
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        assert_eq!(store.ids().unwrap(), vec!["c1".to_string()]);
        store.open("c1").unwrap().remove().unwrap();
        assert!(
            store
                .open("c1")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        let _ = fs::remove_dir_all(base);
    }

    #[test]
    fn recycled_pid_is_stopped() {
        let mut st = sample("x");
        assert!(init_alive(&st));
        st.init_start_time += 1;
        assert!(!init_alive(&st));
        st.pid = 0;
        assert!(!init_alive(&st));
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let (store, base) = tmp_store();
        let c = store.create("l1").unwrap();
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&c.dir)
            .unwrap();
        let r = Flock::lock(f, FlockArg::LockExclusiveNonblock);
        assert!(
            r.is_err(),
            "a second lock must not be granted while one is held"
        );
        drop(c);
        let _ = fs::remove_dir_all(base);
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let (_, base) = tmp_store();
        fs::create_dir_all(&base).unwrap();
        let p = base.join("f.json");
        write_atomic(&p, b"1", 0o600).unwrap();
        write_atomic(&p, b"2", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read_dir(&base).unwrap().count(), 1);
        let _ = fs::remove_dir_all(base);
    }
}
