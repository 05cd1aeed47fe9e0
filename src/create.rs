//! `berth create`: the spec's create operation.
//!
//! 1. load and check the bundle;
//! 2. make the state directory (locked);
//! 3. bind the start socket;
//! 4. clone the init into its namespaces; make the cgroup and apply `linux.resources`
//!    (`cgroups/`): on v2 first, the init cloned into it; on v1 and hybrid hosts while the
//!    init builds the root filesystem, put in it before its cgroup namespace, cgroup mounts
//!    and hooks (`process::spawn`); the init sets up the container and waits;
//! 5. record the state and the pid file.
//!
//! Any failure undoes every step before it.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::time::SystemTime;

use crate::bundle;
use crate::cgroups;
use crate::cli::CreateArgs;
use crate::container::{Container, State, Store, write_atomic};
use crate::err;
use crate::error::{Context, Result};
use crate::process::{self, Spawned};
use crate::timefmt::rfc3339;

pub fn create(store: &Store, a: &CreateArgs) -> Result<()> {
    create_container(store, a).map(drop)
}

/// Create the container; the returned [`Container`] is still locked.
pub fn create_container(store: &Store, a: &CreateArgs) -> Result<(Container, State, Spawned)> {
    create_with_console(store, a, None)
}

/// Create the container; with process.terminal and no --console-socket, the terminal goes
/// to `own_console` when given (`run` in the foreground).
pub fn create_with_console(
    store: &Store,
    a: &CreateArgs,
    own_console: Option<std::os::unix::net::UnixStream>,
) -> Result<(Container, State, Spawned)> {
    let mut b = bundle::load(a.bundle.as_deref())?;
    announce_listen_fds(&mut b.spec);
    let terminal = b
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && a.console_socket.is_none() && own_console.is_none() {
        return Err(err!(
            "config.json process.terminal: true, but no --console-socket was given to receive the terminal"
        ));
    }
    // Connected now, while the path is the caller's: the init sends the pty master on it.
    let console = match (&a.console_socket, terminal) {
        (Some(p), true) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .with_ctx(|| format!("--console-socket {}", p.display()))?,
        ),
        (None, true) => own_console,
        _ => None,
    };
    // Resolve the pid file before anything changes the working directory.
    let pid_file = match &a.pid_file {
        Some(p) if p.is_relative() => Some(std::env::current_dir().ctx("--pid-file")?.join(p)),
        other => other.clone(),
    };
    let c = store.create(&a.id)?;
    match build(&c, &b, a, pid_file.as_deref(), console.as_ref()) {
        Ok((st, sp)) => Ok((c, st, sp)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&c.dir);
            Err(e)
        }
    }
}

fn build(
    c: &Container,
    b: &bundle::Bundle,
    a: &CreateArgs,
    pid_file: Option<&std::path::Path>,
    console: Option<&std::os::unix::net::UnixStream>,
) -> Result<(State, Spawned)> {
    let addr = c.start_socket_addr();
    let listener =
        UnixListener::bind(&addr).with_ctx(|| format!("bind {}", c.start_socket().display()))?;
    // The cgroup is recorded before a directory is made: a create killed from there on leaves a cgroup
    // (and maybe an init in it) that `delete --force` finds without a state.json.
    let journal = |rec: &cgroups::Record| -> Result<()> {
        let data = serde_json::to_vec(rec)?;
        write_atomic(&c.dir.join(crate::container::CGROUP_FILE), &data, 0o600)
    };
    let make_cgroup = || cgroups::create(&b.spec, &c.id, &journal);
    let sp = process::spawn(&process::SpawnArgs {
        id: &c.id,
        spec: &b.spec,
        rootfs: &b.rootfs,
        bundle: &b.dir,
        no_pivot: a.no_pivot,
        keyring: (!a.no_new_keyring).then_some(c.id.as_str()),
        console_socket: console.map(|s| s.as_raw_fd()),
        preserve_fds: a.preserve_fds + listen_fds(),
        listener: &listener,
        parent_only: vec![c.dir_fd()],
        make_cgroup: &make_cgroup,
    })?;
    let cg = sp.cgroup.as_ref();
    let st = State {
        oci_version: b.spec.version().clone(),
        id: c.id.clone(),
        pid: sp.pid.as_raw(),
        init_start_time: sp.start_time,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: rfc3339(SystemTime::now(), true),
        owner: String::new(),
        annotations: b
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        hooks: b.spec.hooks().clone(),
        config: Some(b.spec.clone()),
        cgroup: cg.map(|cg| cg.record.clone()),
    };
    let record = || -> Result<()> {
        c.save(&st)?;
        if let Some(p) = pid_file {
            write_atomic(p, sp.pid.to_string().as_bytes(), 0o644).ctx("--pid-file")?;
        }
        Ok(())
    };
    if let Err(e) = record() {
        process::kill_and_reap(sp.pid, &sp.pidfd);
        cg.map(cgroups::Cgroup::destroy);
        return Err(e);
    }
    Ok((st, sp))
}

/// Socket activation: fds 3 .. 3+LISTEN_FDS handed to berth by its caller (systemd) are
/// handed on to the container, before the --preserve-fds ones, as runc does.
pub fn listen_fds() -> u32 {
    // They are ours only when LISTEN_PID, if set, names this process (sd_listen_fds(3)).
    let for_us = std::env::var("LISTEN_PID")
        .map(|p| p.parse::<u32>().ok() == Some(std::process::id()))
        .unwrap_or(true);
    match for_us {
        true => std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        false => 0,
    }
}

/// Tell the program about socket-activation fds, as runc does: LISTEN_FDS=N and
/// LISTEN_PID=1 (the program is pid 1 of its namespace, or at least the exec'd init).
fn announce_listen_fds(spec: &mut oci_spec::runtime::Spec) {
    let n = listen_fds();
    if n == 0 {
        return;
    }
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
}
