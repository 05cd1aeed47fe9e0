//! The host side of a container's terminal, for `run` in the foreground without
//! --console-socket (a person at a terminal): berth receives the pty master itself, puts
//! its own terminal in raw mode, and copies bytes both ways until the container exits.
//! Window size changes (SIGWINCH) are passed on; every other signal goes to the init.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::Pid;

use crate::err;
use crate::error::{Context, Result};
use crate::process::pidfd_send_signal;

/// Receive the pty master the init sent (SCM_RIGHTS).
pub fn recv_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut name = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx("receive the terminal from the init")?;
    for c in msg.cmsgs().ctx("receive the terminal from the init")? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel installed this fd for us with SCM_RIGHTS.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(err!("the init sent no terminal"))
}

/// Our own terminal in raw mode while this value lives.
pub struct Raw {
    saved: Option<Termios>,
}

impl Raw {
    pub fn stdin() -> Raw {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        Raw { saved }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Give the pty the size of our terminal, when we have one.
fn copy_size(master: BorrowedFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize; TIOCSWINSZ reads one.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Wait for `init` while copying between our stdio and the pty; its exit code.
/// `set` holds the signals blocked by the caller, taken here through a signalfd.
pub fn supervise(init: Pid, pidfd: &OwnedFd, set: &SigSet, master: OwnedFd) -> Result<i32> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).ctx("signalfd")?;
    copy_size(master.as_fd());
    let mut master_file = std::fs::File::from(master);
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(code) = crate::run::reap(init) {
            if master_open {
                drain(&mut master_file, &mut buf);
            }
            return Ok(code);
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master_file.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && master_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("poll"),
        }
        let ready = |i: usize| {
            fds.get(i).and_then(|f| f.revents()).is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sig_ready, master_ready, stdin_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && master_open && ready(2),
        );
        if sig_ready && let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) => copy_size(master_file.as_fd()),
                _ => {
                    let _ = pidfd_send_signal(pidfd, info.ssi_signo as i32);
                }
            }
        }
        if master_ready {
            match master_file.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false, // EIO: every peer closed
                Ok(n) => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if stdin_ready {
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master_file.write_all(&buf[..n]);
                }
            }
        }
    }
}

/// What the container wrote just before it exited.
fn drain(master: &mut std::fs::File, buf: &mut [u8]) {
    let fd = master.as_raw_fd();
    // SAFETY: fcntl on an fd we own, only adding O_NONBLOCK.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut out = std::io::stdout();
    while let Ok(n) = master.read(buf) {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]);
    }
    let _ = out.flush();
}
