//! The six OCI hooks.
//!
//! | hook            | run by            | when                                   | namespaces    | on failure |
//! |-----------------|-------------------|----------------------------------------|---------------|------------|
//! | prestart        | `create` (parent) | container namespaces made, before pivot | runtime's     | fatal      |
//! | createRuntime   | `create` (parent) | right after prestart                   | runtime's     | fatal      |
//! | createContainer | the init          | after createRuntime, before pivot_root | container's   | fatal      |
//! | startContainer  | the init          | after `start`, before execve           | container's   | fatal      |
//! | poststart       | `start`           | after the user program is exec'd       | runtime's     | warning    |
//! | poststop        | `delete`          | after the container stopped            | runtime's     | warning    |
//!
//! Each hook gets the container's state JSON on stdin, its own `args` (args[0] is argv[0])
//! and exactly its `env`, and is killed after `timeout` seconds.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::{Hook, Hooks, Spec};
use serde_json::json;

use crate::err;
use crate::error::{Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn of(self, h: &Hooks) -> &[Hook] {
        let list = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Every hook kind, in lifecycle order: what `features` lists.
pub const ALL: [Kind; 6] = [
    Kind::Prestart,
    Kind::CreateRuntime,
    Kind::CreateContainer,
    Kind::StartContainer,
    Kind::Poststart,
    Kind::Poststop,
];

pub fn list(hooks: Option<&Hooks>, kind: Kind) -> &[Hook] {
    hooks.map(|h| kind.of(h)).unwrap_or_default()
}

/// Whether the set-up must stop for hooks (any of the four run during create and start).
pub fn any_before_start(hooks: Option<&Hooks>) -> bool {
    [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
    ]
    .iter()
    .any(|k| !list(hooks, *k).is_empty())
}

/// The state JSON a hook reads on stdin.
pub fn state_json(spec: &Spec, id: &str, status: &str, pid: i32, bundle: &Path) -> String {
    let ann: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    state_json_of(spec.version(), id, status, pid, bundle, &ann)
}

pub fn state_json_of(
    version: &str,
    id: &str,
    status: &str,
    pid: i32,
    bundle: &Path,
    annotations: &BTreeMap<String, String>,
) -> String {
    let mut v = json!({
        "ociVersion": version,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    });
    if !annotations.is_empty() {
        v["annotations"] = json!(annotations);
    }
    v.to_string()
}

/// The same state with another status.
pub fn with_status(state: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = json!(status);
            v.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// Run the hooks of `kind` in order; the first failure stops them and is returned.
pub fn run(hooks: Option<&Hooks>, kind: Kind, state: &str) -> Result<()> {
    for (i, h) in list(hooks, kind).iter().enumerate() {
        run_one(h, state).with_ctx(|| {
            format!(
                "config.json hooks.{}[{i}] ({})",
                kind.name(),
                h.path().display()
            )
        })?;
    }
    Ok(())
}

/// Run every hook of `kind`; failures are logged as warnings (poststart, poststop).
pub fn run_warn(hooks: Option<&Hooks>, kind: Kind, state: &str) {
    for (i, h) in list(hooks, kind).iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            log::warn!(
                "config.json hooks.{}[{i}] ({}): {e}",
                kind.name(),
                h.path().display()
            );
        }
    }
}

fn run_one(h: &Hook, state: &str) -> Result<()> {
    if let Some(t) = h.timeout().filter(|t| *t <= 0) {
        return Err(err!("timeout {t}: must be greater than zero"));
    }
    let out = nix::sys::memfd::memfd_create(c"berth-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .ctx("memfd_create for the hook's output")?;
    let out = std::fs::File::from(out);
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or_default() {
        match kv.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(kv, ""),
        };
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone().ctx("dup the output memfd")?))
        .stderr(Stdio::from(out.try_clone().ctx("dup the output memfd")?));
    let mut child = cmd.spawn().ctx("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let pidfd = crate::process::pidfd_open(child.id() as i32).ctx("pidfd_open")?;
    let timeout = match h.timeout() {
        Some(t) => PollTimeout::try_from(t.saturating_mul(1000)).unwrap_or(PollTimeout::MAX),
        None => PollTimeout::NONE,
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let exited = loop {
        match poll(&mut fds, timeout) {
            Ok(0) => break false,
            Ok(_) => break true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("wait"),
        }
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(err!("timed out after {} s", h.timeout().unwrap_or(0)));
    }
    let status = child.wait().ctx("wait")?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut out = out;
    let _ = out.rewind();
    let _ = out.take(4096).read_to_string(&mut text);
    let text = text.trim();
    Err(if text.is_empty() {
        err!("{status}")
    } else {
        err!("{status}: {text}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(kind: &str, hooks: serde_json::Value) -> Spec {
        let mut v = crate::spec::default_config();
        v["hooks"] = json!({ kind: hooks });
        v["annotations"] = json!({"k": "v"});
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hook_gets_state_args_env_and_failure_text() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        // First line: argv as the hook sees it (argv[0] included), then $FOO, then stdin.
        let script = format!(
            "tr '\\0' ' ' < /proc/$$/cmdline > {0}; echo \"| $FOO\" >> {0}; cat >> {0}",
            out.display()
        );
        let s = spec_with(
            "prestart",
            json!([{ "path": "/bin/sh", "args": ["myname", "-c", script, "arg1"], "env": ["FOO=bar"] }]),
        );
        let state = state_json(&s, "c1", "creating", 42, Path::new("/b"));
        run(s.hooks().as_ref(), Kind::Prestart, &state).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        let (first, rest) = got.split_once('\n').unwrap();
        assert!(first.starts_with("myname -c "), "{first}");
        assert!(first.ends_with(" arg1 | bar"), "{first}");
        let v: serde_json::Value = serde_json::from_str(rest).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["pid"].as_i64()),
            (Some("c1"), Some(42))
        );
        assert_eq!(v["annotations"]["k"], "v");

        let s = spec_with(
            "prestart",
            json!([{ "path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"] }]),
        );
        let e = run(s.hooks().as_ref(), Kind::Prestart, "{}")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.json hooks.prestart[0] (/bin/sh): "),
            "{e}"
        );
        assert!(e.contains("3") && e.contains("broken"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hook_timeout_kills() {
        let s = spec_with(
            "poststop",
            json!([{ "path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1 }]),
        );
        let t = std::time::Instant::now();
        let e = run(s.hooks().as_ref(), Kind::Poststop, "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(4));
        let s = spec_with("poststop", json!([{ "path": "/bin/true", "timeout": 0 }]));
        assert!(run(s.hooks().as_ref(), Kind::Poststop, "{}").is_err());
    }

    #[test]
    fn missing_hook_binary_is_an_error() {
        let s = spec_with("createRuntime", json!([{ "path": "/nonexistent/hook" }]));
        let e = run(s.hooks().as_ref(), Kind::CreateRuntime, "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("No such file"), "{e}");
    }
}
