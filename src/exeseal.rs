//! CVE-2019-5736: no process that execs container content runs from the writable berth
//! binary on the host.
//!
//! The init (cloned by `create` and `run`) and the process `exec` clones *are* berth until
//! they execve the container's program. If that program is a script starting with
//! `#!/proc/self/exe`, the kernel resolves the interpreter while the process still is berth:
//! it runs the host's berth binary again, inside the container, and loads that binary's ELF
//! interpreter (`/lib64/ld-linux-x86-64.so.2`) from the image. The image's code then runs
//! with `/proc/self/exe` open on the host binary and overwrites it once berth has exited.
//! Being non-dumpable does not stop this (a process may always open its own exe), and
//! neither does never re-executing.
//!
//! So `create`, `run` and `exec` first re-execute themselves, once, from a view of the
//! binary that cannot be written: a detached, read-only overlayfs mount whose top layer is
//! the binary's directory (nothing is copied; a write through it fails with EROFS, and the
//! host file cannot be reached from it), or, where overlayfs cannot be mounted (no
//! CAP_SYS_ADMIN), a sealed memfd copy. The other commands never run container content and
//! pay nothing. `integration/security_exe.rs` runs the attack.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::err;
use crate::error::{Context, Result};
use crate::rootfs::mountapi::{FsContext, attr};

/// Set for the re-executed berth (and removed from its environment at once): a second
/// re-execution would be a bug, and fails instead of looping.
const REEXECUTED: &str = "_BERTH_EXESEALED";

/// Make sure this process runs from a binary the container cannot write; re-executes
/// berth (same argv, environment and fds) when it does not yet.
pub fn ensure() -> Result<()> {
    let again = std::env::var_os(REEXECUTED).is_some();
    if again {
        // SAFETY: called from main before any thread is started.
        unsafe { std::env::remove_var(REEXECUTED) };
    }
    let exe = nix::fcntl::open(
        "/proc/self/exe",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("CVE-2019-5736 protection: open /proc/self/exe")?;
    if sealed(&exe) {
        if again {
            name_self();
        }
        return Ok(());
    }
    if again {
        return Err(err!(
            "CVE-2019-5736 protection: re-executed berth still runs from a writable binary"
        ));
    }
    let overlay = match overlay_view() {
        Ok(fd) => fd,
        Err(e) => {
            log::debug!("CVE-2019-5736 protection: no overlayfs view ({e}), copying to a memfd");
            memfd_copy(exe).map_err(|m| {
                m.context(format!(
                    "CVE-2019-5736 protection: overlayfs view failed ({e}), memfd copy"
                ))
            })?
        }
    };
    Err(reexec(&overlay).context("CVE-2019-5736 protection: re-execute berth"))
}

/// A sealed memfd, or a file on a read-only overlayfs (which has no upper layer to
/// write to, so no remount of the mount can make it writable).
fn sealed(exe: &OwnedFd) -> bool {
    // SAFETY: F_GET_SEALS takes no argument; it fails on files other than memfds.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_WRITE != 0 {
        return true;
    }
    let on_overlay = nix::sys::statfs::fstatfs(exe)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    let read_only = nix::sys::statvfs::fstatvfs(exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    on_overlay && read_only
}

/// `comm` of an fd-executed process is the fd's number: name it after argv[0] again.
fn name_self() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let base = Path::new(&argv0).file_name().unwrap_or_default();
    let mut name: Vec<u8> = base.as_bytes().iter().copied().take(15).collect();
    name.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

fn sys_fd(r: libc::c_long, what: &str) -> Result<OwnedFd> {
    if r < 0 {
        return Err(Errno::last()).ctx(what.to_string());
    }
    // SAFETY: the kernel just returned this new fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// `\` and `:` escaped, as overlayfs reads a lowerdir list.
fn escaped(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in p.as_os_str().as_bytes() {
        if b == b'\\' || b == b':' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Read-only, nodev, nosuid: the attributes of both detached mounts made here.
const READ_ONLY: u64 = attr::RDONLY | attr::NODEV | attr::NOSUID;

/// The running binary, opened through a detached read-only overlayfs whose top layer is
/// its directory. Overlayfs wants a second layer when it has no upper one: an empty
/// directory made for the purpose and removed again once the mount exists. (The root of a
/// detached tmpfs, named as /proc/self/fd/N, would need no directory and works on 6.18;
/// it was tried and taken out: with it, the first berth of one pure-v2 guest run under
/// Debian 12's 6.1 kernel hung in the kernel, and older kernels may refuse a lower layer
/// from outside the caller's mount namespace.)
fn overlay_view() -> Result<OwnedFd> {
    let path = std::fs::read_link("/proc/self/exe").ctx("readlink /proc/self/exe")?;
    if path.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return Err(err!("{} was replaced on disk", path.display()));
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) if d.is_absolute() => (d.to_path_buf(), n.to_os_string()),
        _ => return Err(err!("{}: no directory", path.display())),
    };
    let empty = empty_dir(&dir)?;
    let r = overlay_mount(&dir, &empty);
    let _ = std::fs::remove_dir(&empty);
    let mnt = r?;
    let fd = nix::fcntl::openat(
        &mnt,
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {} in the overlayfs view", name.to_string_lossy()))?;
    Ok(fd)
}

/// A path that is not UTF-8 fails here (berth then falls back to the memfd copy).
fn overlay_mount(dir: &Path, empty: &Path) -> Result<OwnedFd> {
    let mut lower = escaped(dir);
    lower.push(b':');
    lower.extend(escaped(empty));
    let lower = String::from_utf8(lower)
        .map_err(|_| err!("{}: not UTF-8, cannot name it to overlayfs", dir.display()))?;
    let ctx = FsContext::open("overlay")?;
    ctx.set_string("lowerdir", &lower)?;
    // Not needed, and it logs to dmesg when the layers are on different filesystems.
    let _ = ctx.set_string("xino", "off");
    ctx.mount(READ_ONLY)
}

/// A new empty directory, private to this process, not below `dir`: overlayfs refuses a
/// layer inside another (berth in /tmp with the empty layer in /tmp too), and berth would
/// then pay for a full memfd copy of the binary. /dev/shm first: a tmpfs on nearly every
/// host, where making and removing a directory costs no journal write.
fn empty_dir(dir: &Path) -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("/dev/shm"),
        std::env::temp_dir(),
        "/run".into(),
        "/var/tmp".into(),
    ];
    let mut last = err!("no directory outside {} for the empty layer", dir.display());
    for base in candidates
        .iter()
        .filter(|c| c.is_absolute() && !c.starts_with(dir))
    {
        let mut tmpl = base
            .join("berth-exeseal-XXXXXX")
            .into_os_string()
            .into_vec();
        tmpl.push(0);
        // SAFETY: mkdtemp rewrites the X's of a NUL-terminated buffer we own.
        if unsafe { libc::mkdtemp(tmpl.as_mut_ptr().cast()) }.is_null() {
            last = crate::error::Error::from(Errno::last()).context(format!(
                "mkdtemp in {} for the overlayfs view",
                base.display()
            ));
            continue;
        }
        tmpl.pop();
        return Ok(PathBuf::from(OsString::from_vec(tmpl)));
    }
    Err(last)
}

/// A sealed in-memory copy of the binary (used where overlayfs cannot be mounted).
fn memfd_copy(exe: OwnedFd) -> Result<OwnedFd> {
    let name = CString::new("berth").unwrap();
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create reads one NUL-terminated string.
        sys_fd(
            unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) } as _,
            "memfd_create",
        )
    };
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps it executable where vm.memfd_noexec would not.
    let memfd = match create(flags | libc::MFD_EXEC) {
        Err(e) if e.errno() == Some(Errno::EINVAL) => create(flags)?,
        r => r?,
    };
    let mut from = std::fs::File::from(exe);
    let mut to = std::fs::File::from(memfd);
    std::io::copy(&mut from, &mut to).ctx("copy /proc/self/exe")?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer.
    if unsafe { libc::fcntl(to.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(Errno::last()).ctx("seal the memfd");
    }
    Ok(to.into())
}

/// execveat(fd, "", argv, environ + marker, AT_EMPTY_PATH). Returns only on failure.
fn reexec(fd: &OwnedFd) -> crate::error::Error {
    let cstrings = |v: Vec<Vec<u8>>| -> Vec<CString> {
        v.into_iter().filter_map(|s| CString::new(s).ok()).collect()
    };
    let argv = cstrings(std::env::args_os().map(|a| a.into_vec()).collect());
    let mut env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            kv
        })
        .collect();
    env.push(format!("{REEXECUTED}=1").into_bytes());
    let envp = cstrings(env);
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let empty = c"";
    // SAFETY: NULL-terminated arrays of NUL-terminated strings, all alive for the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_paths_are_escaped() {
        assert_eq!(escaped(Path::new("/a:b\\c")), b"/a\\:b\\\\c");
    }

    #[test]
    fn only_a_sealed_copy_or_a_read_only_overlay_counts_as_sealed() {
        let open = |p: &Path| {
            nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
        };
        // The test binary, a plain file on a writable filesystem.
        assert!(!sealed(&open(Path::new("/proc/self/exe"))));
        let src = std::env::temp_dir().join(format!("berth-exeseal-test-{}", std::process::id()));
        std::fs::write(&src, b"\x7fELF not really").unwrap();
        let copy = memfd_copy(open(&src)).unwrap();
        std::fs::remove_file(&src).unwrap();
        assert!(sealed(&copy));
        // Sealed: no write goes through, even to a reopened fd.
        let mut f = std::fs::File::from(copy);
        assert!(std::io::Write::write_all(&mut f, b"PWNED").is_err());
        // The overlayfs view needs CAP_SYS_ADMIN.
        if nix::unistd::geteuid().is_root() {
            let view = overlay_view().unwrap();
            // The O_PATH fd reopened for writing through /proc/self/fd, as the attack does.
            let reopened = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{}", view.as_raw_fd()));
            assert_eq!(reopened.unwrap_err().raw_os_error(), Some(libc::EROFS));
            let ro = std::fs::File::open(format!("/proc/self/fd/{}", view.as_raw_fd())).unwrap();
            assert!(sealed(&OwnedFd::from(ro)));
        }
    }
}
