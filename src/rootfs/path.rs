//! Paths inside the container's root, resolved by file descriptor.
//!
//! Nothing in berth joins a rootfs path by string. A path from config.json or from the image
//! is resolved here with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from an fd of the
//! root, so `..` and absolute symlinks stay inside the root (CVE-2021-30465, crun
//! CVE-2019-18837: mount destinations through symlinks). Missing directories are made one
//! component at a time relative to the fd of their parent, and mounts are done onto
//! `/proc/self/fd/N` of the opened target, so what is mounted on is what was checked.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::err;
use crate::error::{Context, Result};

/// Symlinks followed while making directories, as the kernel's own limit (ELOOP).
const MAX_LINKS: u32 = 40;

/// An open directory that is the root of resolution.
pub struct Root {
    fd: OwnedFd,
    /// For messages only.
    host_path: PathBuf,
}

/// What to create at the end of a path when it is missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

fn how(flags: OFlag) -> OpenHow {
    how_with(
        flags,
        ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    )
}

fn how_with(flags: OFlag, resolve: ResolveFlag) -> OpenHow {
    // openat2 refuses flags that mean nothing with O_PATH, O_NOCTTY among them.
    let extra = if flags.contains(OFlag::O_PATH) {
        OFlag::empty()
    } else {
        OFlag::O_NOCTTY
    };
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | extra)
        .resolve(resolve)
}

/// The file type bits of a mode.
pub fn file_type(mode: libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

fn type_name(t: SFlag) -> &'static str {
    match t {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFIFO => "a fifo",
        SFlag::S_IFSOCK => "a socket",
        _ => "of an unknown type",
    }
}

/// `/proc/self/fd/N`: the name under which an opened file is reopened.
#[cfg(test)]
pub fn fd_path(fd: &impl std::os::fd::AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Root {
    pub fn open(host_path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            host_path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open root {}", host_path.display()))?;
        Ok(Root {
            fd,
            host_path: host_path.to_path_buf(),
        })
    }

    /// A root from an fd already open on it (the rootfs mount berth made).
    pub fn from_fd(fd: OwnedFd, host_path: &Path) -> Root {
        Root {
            fd,
            host_path: host_path.to_path_buf(),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn shown(&self, p: &Path) -> String {
        format!("{} in {}", p.display(), self.host_path.display())
    }

    /// Open `path` (taken as inside the root, absolute or not) as an `O_PATH` fd.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd> {
        self.open_in(path, OFlag::O_PATH)
    }

    /// Open `path` inside the root with `flags`.
    pub fn open_in(&self, path: &Path, flags: OFlag) -> Result<OwnedFd> {
        let rel = relative(path);
        open_retrying(self.fd.as_fd(), &rel, how(flags))
            .with_ctx(|| format!("open {}", self.shown(path)))
    }

    /// Make every missing directory of `path` and return an `O_PATH` fd of the last one.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd> {
        self.mkdir_all_depth(path, mode, MAX_LINKS)
    }

    fn mkdir_all_depth(&self, path: &Path, mode: u32, links_left: u32) -> Result<OwnedFd> {
        let rel = relative(path);
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        // The common cases first, in one to three calls: the directory exists, or only
        // its last component is missing.
        match self.open_in(&rel, dir) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.errno() == Some(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if let (Some(Component::Normal(name)), Some(parent)) =
            (rel.components().next_back(), rel.parent())
            && let Ok(p) = self.open_in(parent, dir)
        {
            match mkdirat(p.as_fd(), name, Mode::from_bits_truncate(mode)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", self.shown(path))),
            }
            // ENOENT here: the name is a dangling symlink, which the walk below follows.
            if let Ok(fd) = self.open_in(&rel, dir) {
                return Ok(fd);
            }
        }
        // Walk from the root: each step resolves the prefix so far inside the root, and
        // a missing component is made relative to its parent's fd.
        let mut cur = self.reopen_root()?;
        let mut prefix = PathBuf::new();
        for comp in rel.components() {
            let name = match comp {
                Component::Normal(name) => name,
                Component::ParentDir => {
                    prefix.push("..");
                    cur = self.open_in(&prefix, dir)?;
                    continue;
                }
                _ => continue,
            };
            let parent = prefix.clone();
            prefix.push(name);
            match self.open_in(&prefix, dir) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if e.errno() == Some(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
            match mkdirat(cur.as_fd(), name, Mode::from_bits_truncate(mode)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", self.shown(&prefix))),
            }
            match self.open_in(&prefix, dir) {
                Ok(fd) => cur = fd,
                // The name exists but leads nowhere: a dangling symlink. Make its target,
                // read as a path inside the root, then go through the link.
                Err(e) if e.errno() == Some(Errno::ENOENT) && links_left > 0 => {
                    let target = readlinkat(cur.as_fd(), name)
                        .with_ctx(|| format!("readlink {}", self.shown(&prefix)))?;
                    let target = Path::new(&target);
                    let dest = if target.is_absolute() {
                        target.to_path_buf()
                    } else {
                        parent.join(target)
                    };
                    self.mkdir_all_depth(&dest, mode, links_left - 1)?;
                    cur = self.open_in(&prefix, dir)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }

    /// Make `path` (and its parents) if missing, as `kind`; return an `O_PATH` fd of it.
    pub fn create(&self, path: &Path, kind: Kind, mode: u32) -> Result<OwnedFd> {
        self.create_depth(path, kind, mode, MAX_LINKS)
    }

    fn create_depth(&self, path: &Path, kind: Kind, mode: u32, links_left: u32) -> Result<OwnedFd> {
        if kind == Kind::Dir {
            return self.mkdir_all(path, mode);
        }
        if let Ok(fd) = self.resolve(path) {
            return Ok(fd);
        }
        let rel = relative(path);
        let name = rel
            .file_name()
            .ok_or_else(|| err!("{}: not a file name", self.shown(path)))?;
        let parent_path = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = self.mkdir_all(&parent_path, 0o755)?;
        match nix::fcntl::openat(
            parent.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("create {}", self.shown(path))),
        }
        match self.resolve(path) {
            // The name exists but leads nowhere: a dangling symlink. As for directories,
            // its target is made, read as a path inside the root, then gone through.
            Err(e) if e.errno() == Some(Errno::ENOENT) && links_left > 0 => {
                let Ok(target) = readlinkat(parent.as_fd(), name) else {
                    return Err(e);
                };
                let target = Path::new(&target);
                let dest = if target.is_absolute() {
                    target.to_path_buf()
                } else {
                    parent_path.join(target)
                };
                self.create_depth(&dest, kind, mode, links_left - 1)?;
                self.resolve(path)
            }
            r => r,
        }
    }

    /// Open `path` with `flags`, refusing a symlink anywhere on the way, even one that
    /// stays inside the root (ELOOP).
    pub fn open_no_symlinks(&self, path: &Path, flags: OFlag) -> Result<OwnedFd> {
        let rel = relative(path);
        let how = how_with(
            flags,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS,
        );
        open_retrying(self.fd.as_fd(), &rel, how).with_ctx(|| format!("open {}", self.shown(path)))
    }

    /// The mount point for a mount at `path`: made as `kind` when missing, and otherwise
    /// checked to be of that kind, since a directory cannot be mounted on a file nor a
    /// file on a directory. `source` names what is mounted, for the message.
    pub fn mount_point(&self, path: &Path, kind: Kind, source: &str) -> Result<OwnedFd> {
        let made = match kind {
            // Opened or made in one go; a non-directory there is described below.
            Kind::Dir => match self.mkdir_all(path, 0o755) {
                Err(e) if e.errno() == Some(Errno::ENOTDIR) => self.resolve(path),
                r => r,
            },
            Kind::File => match self.resolve(path) {
                Err(e) if e.errno() == Some(Errno::ENOENT) => self.create(path, kind, 0o755),
                r => r,
            },
        };
        let fd = made?;
        let t = file_type(
            fstat(fd.as_fd())
                .with_ctx(|| format!("stat {}", self.shown(path)))?
                .st_mode,
        );
        let is_dir = t == SFlag::S_IFDIR;
        match kind {
            Kind::Dir if !is_dir => Err(err!(
                "mount point {} is {} in the rootfs, and {source} is a directory: it can only be mounted on a directory",
                path.display(),
                type_name(t)
            )),
            Kind::File if is_dir => Err(err!(
                "mount point {} is a directory in the rootfs, and {source} is not: it can only be mounted on a file",
                path.display()
            )),
            _ => Ok(fd),
        }
    }

    /// The parent directory of `path` (made when missing) and the last component's name.
    pub fn parent_and_name(&self, path: &Path) -> Result<(OwnedFd, OsString)> {
        let rel = relative(path);
        let name = match rel.components().next_back() {
            Some(Component::Normal(n)) => n.to_os_string(),
            _ => return Err(err!("{}: does not end in a file name", self.shown(path))),
        };
        let parent = self.mkdir_all(rel.parent().unwrap_or(Path::new("")), 0o755)?;
        Ok((parent, name))
    }

    /// An empty regular file at `path` to mount a file on, as an `O_PATH` fd. The last
    /// component is never followed: a symlink, device, fifo or socket the image put there
    /// is removed and replaced (CVE-2025-52565: an image's `/dev/console` or device path
    /// made a symlink redirects the bind mount onto whatever it points to). A regular
    /// file is kept; a directory is an error.
    pub fn plain_file(&self, path: &Path, mode: u32) -> Result<OwnedFd> {
        let (parent, name) = self.parent_and_name(path)?;
        let shown = || self.shown(path);
        match fstatat(
            parent.as_fd(),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => match file_type(st.st_mode) {
                SFlag::S_IFREG => {}
                SFlag::S_IFDIR => {
                    return Err(err!(
                        "{} is a directory in the rootfs, where a file is needed",
                        shown()
                    ));
                }
                _ => unlinkat(parent.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .with_ctx(|| {
                        format!("remove {} ({})", shown(), type_name(file_type(st.st_mode)))
                    })?,
            },
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).with_ctx(|| format!("stat {}", shown())),
        }
        match nix::fcntl::openat(
            parent.as_fd(),
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("create {}", shown())),
        }
        let fd = nix::fcntl::openat(
            parent.as_fd(),
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", shown()))?;
        let t = file_type(
            fstat(fd.as_fd())
                .with_ctx(|| format!("stat {}", shown()))?
                .st_mode,
        );
        if t != SFlag::S_IFREG {
            return Err(err!(
                "{} changed to {} while being set up",
                shown(),
                type_name(t)
            ));
        }
        Ok(fd)
    }

    fn reopen_root(&self) -> Result<OwnedFd> {
        open_retrying(
            self.fd.as_fd(),
            Path::new("."),
            how(OFlag::O_PATH | OFlag::O_DIRECTORY),
        )
        .with_ctx(|| format!("open root {}", self.host_path.display()))
    }
}

/// openat2 with RESOLVE_IN_ROOT answers EAGAIN when a rename or a mount anywhere on the
/// host raced with its resolution of `..`, and asks to be called again. A busy host (other
/// containers starting) makes that common, so it is retried, a bounded number of times.
fn open_retrying(dir: BorrowedFd, rel: &Path, how: OpenHow) -> nix::Result<OwnedFd> {
    const TRIES: u32 = 128;
    let mut n = 0;
    loop {
        match openat2(dir, rel.as_os_str(), how) {
            Err(Errno::EAGAIN) if n < TRIES => n += 1,
            r => return r,
        }
    }
}

/// `path` made relative, with `.` dropped; `..` is kept and resolved by the kernel inside
/// the root.
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => out.push(".."),
            Component::Normal(n) => out.push(n),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn tree(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-path-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("root/etc")).unwrap();
        fs::create_dir_all(d.join("outside")).unwrap();
        d
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn relative_forms() {
        assert_eq!(relative(Path::new("/a/./b/")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("../x")), PathBuf::from("../x"));
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let d = tree("abs");
        symlink(d.join("outside"), d.join("root/evil")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let fd = root.mkdir_all(Path::new("/evil/sub"), 0o755).unwrap();
        // The link's target is read as a path inside the root.
        let want = d
            .join("root")
            .join(d.join("outside").strip_prefix("/").unwrap())
            .join("sub");
        assert_eq!(real(&fd), want);
        assert!(fs::read_dir(d.join("outside")).unwrap().next().is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn dotdot_and_relative_links_stay_inside() {
        let d = tree("dotdot");
        symlink("../../outside", d.join("root/etc/up")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let fd = root
            .create(Path::new("/etc/up/file"), Kind::File, 0o644)
            .unwrap();
        assert_eq!(real(&fd), d.join("root/outside/file"));
        let fd = root.mkdir_all(Path::new("/../../x"), 0o755).unwrap();
        assert_eq!(real(&fd), d.join("root/x"));
        assert!(fs::read_dir(d.join("outside")).unwrap().next().is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn magic_links_are_refused() {
        let d = tree("magic");
        symlink("/proc/self/root", d.join("root/pr")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        // /proc does not exist inside this root, so the link cannot lead to the host's.
        assert!(root.resolve(Path::new("/pr/etc")).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlink_loops_end_in_an_error() {
        let d = tree("loop");
        symlink("/a", d.join("root/a")).unwrap();
        symlink("b", d.join("root/c")).unwrap();
        symlink("c", d.join("root/b")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        assert!(root.mkdir_all(Path::new("/a/x"), 0o755).is_err());
        assert!(root.mkdir_all(Path::new("/b/x"), 0o755).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn dangling_link_to_a_file_is_made_inside() {
        let d = tree("dangling");
        symlink(d.join("outside/target"), d.join("root/etc/link")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let fd = root
            .create(Path::new("/etc/link"), Kind::File, 0o644)
            .unwrap();
        let want = d
            .join("root")
            .join(d.join("outside/target").strip_prefix("/").unwrap());
        assert_eq!(real(&fd), want);
        assert!(want.is_file());
        assert!(fs::read_dir(d.join("outside")).unwrap().next().is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn plain_file_replaces_links_and_devices() {
        let d = tree("plain");
        fs::write(d.join("outside/host"), "host\n").unwrap();
        symlink(d.join("outside/host"), d.join("root/etc/console")).unwrap();
        fs::create_dir_all(d.join("root/etc/adir")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let fd = root.plain_file(Path::new("/etc/console"), 0o600).unwrap();
        assert_eq!(real(&fd), d.join("root/etc/console"));
        assert!(!d.join("root/etc/console").is_symlink());
        assert_eq!(
            fs::read_to_string(d.join("outside/host")).unwrap(),
            "host\n"
        );
        let e = root.plain_file(Path::new("/etc/adir"), 0o600).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mount_points_are_checked_against_the_source_kind() {
        let d = tree("mountpoint");
        fs::write(d.join("root/etc/file"), "").unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        assert!(root.mount_point(Path::new("/etc"), Kind::Dir, "x").is_ok());
        let e = root
            .mount_point(Path::new("/etc"), Kind::File, "the source f")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("is a directory in the rootfs, and the source f is not"),
            "{e}"
        );
        let e = root
            .mount_point(Path::new("/etc/file"), Kind::Dir, "the source d")
            .unwrap_err();
        assert!(
            e.to_string().contains("is a regular file in the rootfs"),
            "{e}"
        );
        root.mount_point(Path::new("/new/file"), Kind::File, "x")
            .unwrap();
        assert!(d.join("root/new/file").is_file());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinks_are_refused_where_none_may_be() {
        let d = tree("nosym");
        symlink("etc", d.join("root/proc")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let e = root
            .open_no_symlinks(Path::new("/proc"), OFlag::O_PATH)
            .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ELOOP));
        assert!(
            root.open_no_symlinks(Path::new("/etc"), OFlag::O_PATH)
                .is_ok()
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_kind_makes_a_file() {
        let d = tree("file");
        let root = Root::open(&d.join("root")).unwrap();
        root.create(Path::new("/a/b/f"), Kind::File, 0o600).unwrap();
        assert!(d.join("root/a/b/f").is_file());
        root.create(Path::new("/a/b/f"), Kind::File, 0o600).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}
