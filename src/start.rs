//! `berth start`: the spec's start operation. The created init waits on the start
//! socket; `start` connects, removes the socket (from then on the container reads as
//! running), sends the go byte, and waits until the init has exec'd the user program: the
//! connection closes on exec, or carries the reason the exec failed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use crate::container::{Container, State, Status, Store};
use crate::err;
use crate::error::{Context, Result};
use crate::hooks;

pub fn start(store: &Store, id: &str) -> Result<()> {
    let c = store.open(id)?;
    let st = c.load()?;
    match c.status(st.as_ref()) {
        Status::Created => {
            release(&c)?;
            poststart(st.as_ref());
            Ok(())
        }
        Status::Stopped => Err(err!("cannot start container {id}: it has stopped")),
        s => Err(err!(
            "cannot start container {id}: it is {}, not created",
            s.as_str()
        )),
    }
}

/// Run the poststart hooks; their failures are warnings.
pub fn poststart(st: Option<&State>) {
    if let Some(st) = st {
        hooks::run_warn(
            st.hooks.as_ref(),
            hooks::Kind::Poststart,
            &st.hook_json(Status::Running),
        );
    }
}

/// Let the init exec the user program; return once it has.
pub fn release(c: &Container) -> Result<()> {
    let mut conn = UnixStream::connect(c.start_socket_addr())
        .with_ctx(|| format!("connect to the init of {} (has it exited?)", c.id))?;
    std::fs::remove_file(c.start_socket())
        .with_ctx(|| format!("remove {}", c.start_socket().display()))?;
    conn.write_all(b"g").ctx("release the init")?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)
        .ctx("wait for the init to exec")?;
    match reply.strip_prefix('X') {
        Some("") => Ok(()),
        Some(text) => Err(err!("{text}")),
        None if reply.is_empty() => Err(err!(
            "container {}: its init exited before it could run the program",
            c.id
        )),
        None => Err(err!("{reply}")),
    }
}
