//! seccomp(2): loading a filter, and probing which flags the kernel knows.

use std::os::fd::{FromRawFd, OwnedFd};

use super::bpf::Insn;
use super::profile::{
    FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_WAIT_KILLABLE_RECV,
};
use crate::err;
use crate::error::{Context, Result};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const Insn,
}

/// Load `prog` into the calling thread; with FLAG_NEW_LISTENER, the notify fd (close on
/// exec, as the kernel makes it).
pub fn load(prog: &[Insn], flags: u32) -> Result<Option<OwnedFd>> {
    let len = u16::try_from(prog.len()).map_err(|_| {
        err!(
            "config.json linux.seccomp: filter of {} instructions",
            prog.len()
        )
    })?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    // SAFETY: fprog points at `prog`, `len` instructions long, alive for the whole call;
    // the kernel copies the program before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const SockFprog,
        )
    };
    let r = nix::errno::Errno::result(r).with_ctx(|| {
        format!(
            "config.json linux.seccomp: load the filter (seccomp SET_MODE_FILTER, flags {})",
            flag_names(flags)
        )
    })?;
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER, seccomp returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

/// The filter flags of the runtime spec, with their bits.
pub const KNOWN_FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

fn flag_names(flags: u32) -> String {
    let mut names: Vec<&str> = KNOWN_FLAGS
        .iter()
        .filter(|(_, b)| flags & b != 0)
        .map(|(n, _)| *n)
        .collect();
    if flags & FLAG_NEW_LISTENER != 0 {
        names.push("SECCOMP_FILTER_FLAG_NEW_LISTENER");
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

/// Whether the running kernel accepts `flag`. A NULL program makes seccomp fail with
/// EFAULT once the flags are accepted, and EINVAL when they are not, so nothing is loaded.
pub fn kernel_supports(flag: u32) -> bool {
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    let flags = if flag == FLAG_WAIT_KILLABLE_RECV {
        flag | FLAG_NEW_LISTENER
    } else {
        flag
    };
    // SAFETY: a NULL program is never read past the kernel's EFAULT check.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<SockFprog>(),
        )
    };
    r == -1 && nix::errno::Errno::last() == nix::errno::Errno::EFAULT
}
