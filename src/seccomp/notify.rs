//! SCMP_ACT_NOTIFY: handing the filter's notify fd to the seccomp agent at
//! `linux.seccomp.listenerPath`, in the format runc's agents read: one message on a unix
//! stream socket whose data is the `ContainerProcessState` JSON
//!
//! ```json
//! {"ociVersion": "1.2.1", "fds": ["seccompFd"], "pid": 4242, "metadata": "<listenerMetadata>",
//!  "state": {"ociVersion": "…", "id": "…", "status": "created", "pid": 4242, "bundle": "…"}}
//! ```
//!
//! and whose SCM_RIGHTS control message carries the fd, named by `fds`.
//!
//! listenerPath is a host path, out of reach once the init has pivoted into the container's
//! root, so the init connects while compiling, before pivot_root, and keeps the socket.
//! The notify fd only exists once the filter is loaded, the init's last step before
//! execve, so the message goes then: a single sendmsg, the one system call between loading
//! and the capability calls and execve (a profile using NOTIFY must allow sendmsg, and may
//! not NOTIFY it). The agent sees the connection at `create` and the fd at `start`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Context, Result};

/// What the agent is told about the container.
pub struct Container<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub id: &'a str,
    pub bundle: &'a Path,
}

/// A connection to the agent and the message waiting for the fd.
pub struct Agent {
    sock: OwnedFd,
    msg: Vec<u8>,
    path: PathBuf,
}

/// The init's pid as the runtime sees it. Called before pivot_root, where /proc is still
/// the host's: its `self` names the init in the host's pid namespace, while getpid() in a
/// new pid namespace says 1.
fn host_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| std::process::id() as i32)
}

pub fn connect(path: &Path, metadata: Option<&str>, c: &Container) -> Result<Agent> {
    let stream = UnixStream::connect(path).with_ctx(|| {
        format!(
            "config.json linux.seccomp.listenerPath: connect to the seccomp agent at {}",
            path.display()
        )
    })?;
    let pid = host_pid();
    let state: serde_json::Value = serde_json::from_str(&crate::hooks::state_json(
        c.spec, c.id, "created", pid, c.bundle,
    ))?;
    let mut v = json!({
        "ociVersion": oci_spec::runtime::VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        v["metadata"] = json!(m);
    }
    Ok(Agent {
        sock: stream.into(),
        msg: v.to_string().into_bytes(),
        path: path.to_path_buf(),
    })
}

impl Agent {
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Send the notify fd. Runs under the new filter: one sendmsg, from buffers made
    /// before, so no allocation can add a system call the profile might block.
    pub fn send(&self, fd: RawFd) -> Result<()> {
        // Room for one cmsghdr carrying one int, aligned as the kernel expects.
        #[repr(C, align(8))]
        struct Cmsg([u8; 64]);
        let mut buf = Cmsg([0; 64]);
        let mut iov = libc::iovec {
            iov_base: self.msg.as_ptr() as *mut libc::c_void,
            iov_len: self.msg.len(),
        };
        // SAFETY: an all-zero msghdr is valid (no name, no data, no control).
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = buf.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        mh.msg_controllen = space;
        // SAFETY: msg_control points at `buf`, at least `space` bytes, aligned for a
        // cmsghdr; CMSG_FIRSTHDR/CMSG_DATA stay inside it, and the fd is written unaligned.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        }
        loop {
            // SAFETY: mh and everything it points to live until the call returns.
            let r = unsafe { libc::sendmsg(self.sock.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
            match nix::errno::Errno::result(r) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(e).with_ctx(|| {
                        format!(
                            "config.json linux.seccomp.listenerPath: send the notify fd to {}",
                            self.path.display()
                        )
                    });
                }
            }
        }
    }
}
