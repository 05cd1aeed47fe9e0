//! `linux.rootfsPropagation`, and keeping the container's mounts out of the host.
//!
//! As runc does, the value also sets the propagation of the container's whole mount tree
//! before anything is mounted (default `rslave`: host mounts still show up in the
//! container, nothing goes back; `unbindable` then too, since an unbindable tree could not
//! even be bound for the rootfs, which is where runc 1.1.5 fails it). `rshared` keeps the
//! container's copies of host mounts peers of the host's, so a bind of a shared host
//! directory with `rshared` propagates both ways (Kubernetes' Bidirectional volumes).
//!
//! Three things keep that from leaking the container's own mounts to the host:
//! - the mount holding the rootfs directory is made private before the rootfs is bound
//!   on it: binding onto a shared mount would copy the rootfs bind, and everything later
//!   mounted in it, into the host at the bundle's path (what runc 1.1.5 leaves behind with
//!   `shared`); pivot_root refuses a shared parent as well;
//! - the old `/` is made private before `pivot_root`, which also refuses it shared;
//! - after the pivot, the value is applied again to the container's own `/`, the rootfs
//!   bind, which so becomes a peer group of its own (with `shared`, a bind of `/` made in
//!   the container receives what is later mounted under `/`).

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use super::hostproc::HostProc;
use super::mountapi::{self, MountAttr};
use super::options;
use crate::err;
use crate::error::{Context, Result};

/// The propagation rootfsPropagation asks for, if set.
pub fn asked(spec: &Spec) -> Result<Option<(String, MsFlags)>> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    let flag = options::PROPAGATION
        .iter()
        .find(|(n, _)| *n == p)
        .map(|(_, f)| *f)
        .ok_or_else(|| err!("config.json linux.rootfsPropagation: unknown value {p:?}"))?;
    Ok(Some((p, flag)))
}

/// Before anything is mounted: the whole tree's propagation (rootfsPropagation, or
/// `rslave`), and the rootfs's parent mount made private.
pub fn before_mounts(spec: &Spec, rootfs: &Path) -> Result<()> {
    let (what, flag) = match asked(spec)? {
        // An unbindable tree could not be bound: the rootfs is, first of all. Unbindable
        // is for the container's own `/`, after the pivot.
        Some((p, f)) if !f.contains(MsFlags::MS_UNBINDABLE) => (
            format!("config.json linux.rootfsPropagation: make / {p}"),
            f,
        ),
        _ => (
            "make / a recursive slave in the container's mount namespace".to_string(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
        ),
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>).ctx(what)?;
    // After a recursive slave or private no mount here is shared, and the mount table
    // need not be read.
    let rec = flag.contains(MsFlags::MS_REC);
    if rec && flag.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE) {
        return Ok(());
    }
    private_parent(rootfs)
}

/// Just before pivot_root (or the --no-pivot move onto `/`): the old `/` must not be
/// shared. Only a shared rootfsPropagation leaves it so.
pub fn before_pivot(spec: &Spec) -> Result<()> {
    if asked(spec)?.is_some_and(|(_, f)| f.contains(MsFlags::MS_SHARED)) {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ctx("make the old / private for pivot_root")?;
    }
    Ok(())
}

/// After pivot_root: rootfsPropagation on the container's own `/`.
pub fn after_pivot(spec: &Spec) -> Result<()> {
    if let Some((p, flag)) = asked(spec)? {
        mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
            .with_ctx(|| format!("config.json linux.rootfsPropagation: make / {p}"))?;
    }
    Ok(())
}

/// Make the mount holding `rootfs` private when it is shared.
fn private_parent(rootfs: &Path) -> Result<()> {
    let field = || format!("config.json root.path ({})", rootfs.display());
    let id = mount_id(rootfs).with_ctx(field)?;
    let info = HostProc::open()?.read("self/mountinfo")?;
    let Some((point, shared)) = find_mount(&info, id) else {
        return Err(err!(
            "{}: mount {id} is not in /proc/self/mountinfo",
            field()
        ));
    };
    if !shared {
        return Ok(());
    }
    let fd = nix::fcntl::open(
        point.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("{}: open its mount {point}", field()))?;
    if mount_id_fd(&fd)? != id {
        return Err(err!("{}: {point} is not the mount holding it", field()));
    }
    let private = MountAttr {
        propagation: MsFlags::MS_PRIVATE.bits(),
        ..Default::default()
    };
    mountapi::setattr(fd.as_fd(), false, &private)
        .with_ctx(|| format!("{}: make its mount {point} private", field()))
}

fn statx_mnt_id(dir: libc::c_int, path: &std::ffi::CStr, flags: libc::c_int) -> Result<u64> {
    // SAFETY: statx is a plain C struct of integers, for which all zeroes is valid.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a pointer to a statx buffer, both valid for the call.
    let r = unsafe { libc::statx(dir, path.as_ptr(), flags, libc::STATX_MNT_ID, &mut st) };
    nix::errno::Errno::result(r).ctx("statx")?;
    Ok(st.stx_mnt_id)
}

fn mount_id(p: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| err!("{}: contains a NUL byte", p.display()))?;
    statx_mnt_id(libc::AT_FDCWD, &c, 0)
}

fn mount_id_fd(fd: &impl std::os::fd::AsRawFd) -> Result<u64> {
    statx_mnt_id(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// The mount point of mount `id` in a mountinfo text, and whether it is shared.
fn find_mount(mountinfo: &str, id: u64) -> Option<(String, bool)> {
    for line in mountinfo.lines() {
        let (pre, _) = line.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        if f.first()?.parse::<u64>().ok()? != id {
            continue;
        }
        let shared = f.iter().skip(6).any(|o| o.starts_with("shared:"));
        return Some((unescape(f.get(4)?), shared));
    }
    None
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mount_and_its_sharing() {
        let mi = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                  43 27 254:0 /x /tmp/a\\040b rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(find_mount(mi, 27), Some(("/".to_string(), true)));
        assert_eq!(find_mount(mi, 43), Some(("/tmp/a b".to_string(), false)));
        assert_eq!(find_mount(mi, 7), None);
    }
}
