//! `berth exec`: run a new process in a running container. Without `--process`, the
//! process is the container's own with the command line and the flags applied (runc's
//! rules); either way the container's namespaces, cgroups and seccomp profile apply.

use std::os::fd::AsRawFd;

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use oci_spec::runtime::{Capabilities, Process};

use crate::bundle;
use crate::cli::ExecArgs;
use crate::container::{Status, Store, init_alive, write_atomic};
use crate::err;
use crate::error::{Context, Result};
use crate::process::join::{self, JoinArgs};
use crate::process::pidfd_open;
use crate::run::supervise;

/// Returns the exit code for berth: the process's own in the foreground.
pub fn exec(store: &Store, a: &ExecArgs) -> Result<i32> {
    let c = store.peek(&a.id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {} is still being created", a.id))?;
    match c.status(Some(&st)) {
        Status::Created | Status::Running => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => {
            return Err(err!(
                "cannot exec in container {}: it is paused (resume it, or use --ignore-paused)",
                a.id
            ));
        }
        s => {
            return Err(err!(
                "cannot exec in container {}: it is {}",
                a.id,
                s.as_str()
            ));
        }
    }
    let spec = st.config.as_ref().ok_or_else(|| {
        err!(
            "container {}: its state records no config (made by an older berth)",
            a.id
        )
    })?;
    let process = match &a.process {
        Some(path) => bundle::parse_process(path)?,
        None => from_flags(spec.process().as_ref(), a)?,
    };
    crate::process::attrs::check_process(&process)?;
    if process.terminal() == Some(true) && a.console_socket.is_none() {
        return Err(err!(
            "exec --tty: needs --console-socket to receive the terminal"
        ));
    }
    let console = match (&a.console_socket, process.terminal() == Some(true)) {
        (Some(p), true) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .with_ctx(|| format!("--console-socket {}", p.display()))?,
        ),
        _ => None,
    };
    let pid_file = match &a.pid_file {
        Some(p) if p.is_relative() => Some(std::env::current_dir().ctx("--pid-file")?.join(p)),
        other => other.clone(),
    };
    let init = pidfd_open(st.pid).with_ctx(|| format!("pidfd_open {}", st.pid))?;
    if !init_alive(&st) {
        return Err(err!(
            "cannot exec in container {}: its init has exited",
            a.id
        ));
    }

    let all = SigSet::all();
    let mut old = SigSet::empty();
    if !a.detach {
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).ctx("block signals")?;
    }
    let sp = join::spawn(&JoinArgs {
        spec,
        process: &process,
        id: &a.id,
        bundle: &st.bundle,
        init_pidfd: &init,
        console_socket: console.as_ref().map(|s| s.as_raw_fd()),
        preserve_fds: a.preserve_fds,
        join_cgroup: &|pid| crate::cgroups::join(&st, pid.as_raw()),
    })?;
    drop(console);
    if let Some(p) = &pid_file {
        write_atomic(p, sp.pid.to_string().as_bytes(), 0o644).ctx("--pid-file")?;
    }
    if a.detach {
        return Ok(0);
    }
    let code = supervise(sp.pid, &sp.pidfd, &all);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}

/// `1000` or `1000:1000`: numbers only, never looked up as names, and never the
/// all-ones value, which set*id(2) reads as "leave unchanged".
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let num = |part: &str, what: &str| -> Result<u32> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err!("--user {s:?}: the {what} must be a decimal number"));
        }
        match part.parse::<u32>() {
            Ok(u32::MAX) | Err(_) => Err(err!(
                "--user {s:?}: the {what} is out of range (0 to 4294967294)"
            )),
            Ok(n) => Ok(n),
        }
    };
    match s.split_once(':') {
        Some((u, g)) => Ok((num(u, "uid")?, Some(num(g, "gid")?))),
        None => Ok((num(s, "uid")?, None)),
    }
}

fn from_flags(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    if a.command.is_empty() {
        return Err(err!(
            "exec: no command given (give it after the id, or use --process FILE)"
        ));
    }
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(0));
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let added: Capabilities =
            serde_json::from_value(serde_json::json!(a.cap)).map_err(|e| err!("--cap: {e}"))?;
        let mut caps = p.capabilities().clone().unwrap_or_default();
        // Not inheritable, nor ambient: a capability given to exec must not pass on to
        // programs the process runs in turn (CVE-2022-29162).
        let grow = |set: &Option<Capabilities>| -> Option<Capabilities> {
            let mut s = set.clone().unwrap_or_default();
            s.extend(added.iter().copied());
            Some(s)
        };
        caps.set_bounding(grow(caps.bounding()));
        caps.set_effective(grow(caps.effective()));
        caps.set_permitted(grow(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_forms() {
        assert_eq!(parse_user("1").unwrap(), (1, None));
        assert_eq!(parse_user("0").unwrap(), (0, None));
        assert_eq!(parse_user("65534").unwrap(), (65534, None));
        assert_eq!(parse_user("1:2").unwrap(), (1, Some(2)));
        assert_eq!(parse_user("4294967294").unwrap(), (4294967294, None));
        for bad in [
            "-1",
            "4294967295",
            "4294967296",
            "abc",
            "1:",
            ":1",
            "",
            "1:2:3",
            " 1",
            "+1",
            "1:-1",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
