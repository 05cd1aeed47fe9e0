//! `linux.mountLabel`: the SELinux context of the filesystems made for the container.
//!
//! As runc does: new filesystems get it as their `context=` option, except proc, sysfs and
//! cgroup, which take none, and mqueue, whose root is labelled after the mount. Bind
//! mounts keep their source's labels (engines relabel sources themselves). Where SELinux
//! is not enabled the label is skipped, with a debug line.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::err;
use crate::error::{Context, Result};

/// Whether SELinux is enabled here: a selinuxfs at /sys/fs/selinux. Probed once.
pub fn selinux_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        nix::sys::statfs::statfs("/sys/fs/selinux")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::SELINUX_MAGIC)
    })
}

fn label(spec: &Spec) -> Option<&str> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
}

/// The debug line for a label that will not be applied; call once per container.
pub fn note(spec: &Spec) {
    if let Some(l) = label(spec)
        && !selinux_enabled()
    {
        log::debug!(
            "config.json linux.mountLabel {l:?}: SELinux is not enabled on this host, not applied"
        );
    }
}

fn takes_context(typ: &str) -> bool {
    !matches!(typ, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2")
}

/// The option that labels a new filesystem of type `typ`, when one applies.
pub fn mount_option(spec: &Spec, typ: &str) -> Option<(&'static str, String)> {
    let l = label(spec)?;
    (takes_context(typ) && selinux_enabled()).then(|| ("context", l.to_string()))
}

/// Label what cannot take a `context=` option (mqueue's root).
pub fn after_mount(spec: &Spec, typ: &str, mnt: &OwnedFd) -> Result<()> {
    let Some(l) = label(spec) else {
        return Ok(());
    };
    if typ != "mqueue" || !selinux_enabled() {
        return Ok(());
    }
    let dir = nix::fcntl::openat(
        mnt.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open the mqueue root")?;
    let value = CString::new(l).map_err(|_| err!("linux.mountLabel: contains a NUL byte"))?;
    // SAFETY: a NUL-terminated attribute name and a value buffer of the length given,
    // both valid for the call, on an fd we own.
    let r = unsafe {
        libc::fsetxattr(
            dir.as_raw_fd(),
            c"security.selinux".as_ptr(),
            value.as_ptr().cast(),
            value.as_bytes().len(),
            0,
        )
    };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx("config.json linux.mountLabel: label the mqueue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_types_take_a_context_option() {
        assert!(takes_context("tmpfs") && takes_context("devpts") && takes_context("overlay"));
        assert!(!takes_context("proc") && !takes_context("sysfs") && !takes_context("mqueue"));
    }

    #[test]
    fn no_label_without_selinux() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_mount_label(Some("system_u:object_r:container_file_t:s0:c1,c2".into()));
        spec.set_linux(Some(linux));
        if !selinux_enabled() {
            assert_eq!(mount_option(&spec, "tmpfs"), None);
        } else {
            assert_eq!(mount_option(&spec, "tmpfs").unwrap().0, "context");
        }
        assert_eq!(mount_option(&spec, "proc"), None);
    }
}
