//! The parent ↔ init protocol: one `SOCK_SEQPACKET` socketpair, one message a packet.
//!
//! ```text
//!  berth create (parent)                         container init (child)
//!  ─────────────────────                         ──────────────────────
//!  socketpair, bind start.sock
//!  v2: make the cgroup, apply linux.resources
//!  clone3(CLONE_NEW*,                            born in the new namespaces
//!    v2: CLONE_INTO_CGROUP) ───────────────────▶ (v2: and in the container's cgroup)
//!  v2 (or the init made by an intermediate):     v2: waits for Placed before anything
//!    write its pid into cgroup.procs
//!    ── Placed ────────────────────────────────▶
//!  [new user namespace only]
//!    write uid_map, gid_map
//!    ── Mapped ────────────────────────────────▶ waits for this before acting as root
//!  v1/hybrid: make the cgroup in each            join namespaces by path, hostname,
//!    hierarchy, apply linux.resources, write     mounts (v1/hybrid: meanwhile; v2:
//!                                                after the cgroup namespace)
//!    the init's pid into each cgroup.procs
//!    ── Placed ────────────────────────────────▶ v1/hybrid: waits for this before its
//!                                                first cgroup mount, a hook or
//!                                                pivot_root
//!                                                unshare the cgroup namespace (rooted
//!                                                at the container's cgroup), the rest
//!                                                of the mounts, /dev
//!  [only when config.json has hooks before start]
//!  ◀──────────────────────────────── Hooks ────
//!  run prestart, createRuntime hooks
//!    ── HooksDone ────────────────────────────▶ run createContainer hooks
//!                                                pivot_root, identity,
//!                                                resolve process.args[0]
//!  ◀──────────────────────────────── Ready ──── (or Error(text), then exit 1)
//!  write state.json and --pid-file, exit 0
//!                                                accept() on start.sock …
//!  berth start ── connect, unlink, "go" byte ──▶ startContainer hooks
//!             ◀── "X" ───────────────────────── about to execve(process.args)
//!             ◀── EOF (exec done; the connection is close-on-exec), or an error text
//!  No "X" before EOF: the init died before it could run the program.
//! ```
//!
//! Any message other than the one expected, or end of stream, ends the create with an error.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};

use crate::err;
use crate::error::{Context, Result};

/// Largest message; an error text longer than this is cut.
const MAX_MSG: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: the init is in the container's cgroup (always the first message).
    Placed,
    /// Parent → init: the id mappings of the new user namespace are written.
    Mapped,
    /// Init → parent: mounts done, before pivot_root: run prestart and createRuntime hooks.
    Hooks,
    /// Parent → init: those hooks ran.
    HooksDone,
    /// Init → parent: set up, waiting for `start`.
    Ready,
    /// Parent → joining process (`exec`): in the container's cgroups now, go on.
    Go,
    /// Init → parent: set-up failed; the text says where and why.
    Error(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Placed => vec![b'P'],
            Msg::Mapped => vec![b'M'],
            Msg::Ready => vec![b'R'],
            Msg::Go => vec![b'G'],
            Msg::Hooks => vec![b'H'],
            Msg::HooksDone => vec![b'D'],
            Msg::Error(t) => {
                let mut v = vec![b'E'];
                let mut end = t.len().min(MAX_MSG - 1);
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                v.extend_from_slice(&t.as_bytes()[..end]);
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Result<Msg> {
        match b.split_first() {
            Some((b'P', [])) => Ok(Msg::Placed),
            Some((b'M', [])) => Ok(Msg::Mapped),
            Some((b'R', [])) => Ok(Msg::Ready),
            Some((b'G', [])) => Ok(Msg::Go),
            Some((b'H', [])) => Ok(Msg::Hooks),
            Some((b'D', [])) => Ok(Msg::HooksDone),
            Some((b'E', t)) => Ok(Msg::Error(String::from_utf8_lossy(t).into_owned())),
            _ => Err(err!("sync: malformed message {b:?}")),
        }
    }
}

pub struct Channel(OwnedFd);

/// A connected pair: (parent's end, init's end). Both close on exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx("sync: socketpair")?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn raw_fd(&self) -> i32 {
        self.0.as_raw_fd()
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let buf = m.encode();
        loop {
            match send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx(format!("sync: send {m:?}")),
            }
        }
    }

    /// The next message; `None` at end of stream (the other side is gone).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx("sync: receive"),
            }
        }
    }

    /// Wait for exactly `want`; an `Error` from the init becomes this side's error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(t)) => Err(crate::error::Error::new(t)),
            Some(m) => Err(err!("sync: expected {want:?}, got {m:?}")),
            None => Err(err!("sync: the other side closed before sending {want:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_boundaries() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Mapped).unwrap();
        a.send(&Msg::Error("mount: Permission denied".into()))
            .unwrap();
        a.send(&Msg::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Mapped));
        assert_eq!(
            b.recv().unwrap(),
            Some(Msg::Error("mount: Permission denied".into()))
        );
        b.expect(Msg::Ready).unwrap();
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn init_error_becomes_the_error() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Error("config.json process.cwd: bad".into()))
            .unwrap();
        assert_eq!(
            b.expect(Msg::Ready).unwrap_err().to_string(),
            "config.json process.cwd: bad"
        );
        drop(a);
        assert!(
            b.expect(Msg::Ready)
                .unwrap_err()
                .to_string()
                .contains("closed")
        );
    }

    #[test]
    fn long_error_is_cut_on_a_char_boundary() {
        let t = "é".repeat(MAX_MSG);
        let enc = Msg::Error(t).encode();
        assert!(enc.len() <= MAX_MSG);
        assert!(std::str::from_utf8(&enc[1..]).is_ok());
    }
}
