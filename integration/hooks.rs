//! The six OCI hooks, seen by the hooks themselves: each records its argv (from /proc),
//! its environment, the state JSON it read on stdin and its place in the order, in a host
//! directory that the container has bind-mounted at /hooks.
//!
//! - prestart, createRuntime, poststart, poststop run in the runtime's namespaces: the
//!   host's /bin/sh, host paths.
//! - createContainer runs in the container's namespaces before pivot_root: the host's
//!   /bin/sh still resolves, and so do host paths.
//! - startContainer runs inside the container after pivot_root: its path is the rootfs's
//!   /bin/sh (busybox), and it writes through /hooks.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Bundle, Env, add_mount, alive, wait_until};

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The environment every recording hook is given, exactly.
const HOOK_ENV: [&str; 4] = [
    "PATH=/usr/bin:/bin",
    "HOOK_ONE=1",
    "HOOK_SPACES=a b  c",
    "HOOK_EMPTY=",
];

/// Where a hook of `kind` reaches the record directory.
fn dir_for(kind: &str, host: &Path) -> String {
    if kind == "startContainer" {
        "/hooks".into()
    } else {
        host.to_str().unwrap().into()
    }
}

/// The record directory on the host, writable by anyone (the container's users too).
fn record_dir(t: &Env) -> PathBuf {
    let d = t.dir.join("hooklog");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// The shell text of a recording hook named `name`, writing below `d`. `read` is a
/// builtin, so /proc/self/stat is the hook's own, in whatever /proc it sees.
fn record_script(name: &str, d: &str) -> String {
    format!(
        "read -r me rest < /proc/self/stat; cat /proc/$me/cmdline > {d}/{name}.argv; \
         cat /proc/$me/environ > {d}/{name}.env; cat > {d}/{name}.stdin; echo {name} >> {d}/order"
    )
}

/// argv[0] of a recording hook: any name for the host's shell; in the container /bin/sh is
/// busybox, which picks its applet by argv[0], so "ash" (not "sh", the path's own name).
fn argv0(kind: &str, name: &str) -> String {
    if kind == "startContainer" {
        "ash".into()
    } else {
        format!("hook-{name}")
    }
}

/// A hook of `kind` that records itself as `name`.
fn recorder(kind: &str, name: &str, host: &Path) -> Value {
    let d = dir_for(kind, host);
    let mut env: Vec<String> = HOOK_ENV.iter().map(|s| s.to_string()).collect();
    env.push(format!("HOOK_NAME={name}"));
    json!({
        "path": "/bin/sh",
        "args": [argv0(kind, name), "-c", record_script(name, &d), "extra-arg"],
        "env": env,
    })
}

/// A hook of `kind` that reads its stdin, notes `name` in the order, says why on stderr
/// and exits 3. (It drains stdin so that it fails the same way whenever it is scheduled:
/// see `start_container_hook_that_ignores_stdin_does_not_kill_the_init`.)
fn failing(kind: &str, name: &str, host: &Path) -> Value {
    let d = dir_for(kind, host);
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "while read -r _; do :; done; echo {name} >> {d}/order; echo hook-broke-{name} >&2; exit 3")],
    })
}

/// One recording hook of each kind.
fn all_recorders(host: &Path) -> Value {
    let mut hooks = serde_json::Map::new();
    for k in KINDS {
        hooks.insert(k.into(), json!([recorder(k, k, host)]));
    }
    Value::Object(hooks)
}

/// A bundle with its own rootfs (with /hooks), `hooks`, an annotation and `args`.
fn hook_bundle(t: &Env, host: &Path, hooks: Value, args: &[&str]) -> Bundle {
    t.bundle_own_rootfs(
        |root| fs::create_dir_all(root.join("hooks")).unwrap(),
        |c| {
            c["hooks"] = hooks;
            c["annotations"] = json!({"org.berth.test": "hooks", "second": "two words"});
            c["process"]["args"] = json!(args);
            add_mount(
                c,
                json!({"destination": "/hooks", "type": "bind",
                       "source": host, "options": ["rbind", "rw"]}),
            );
        },
    )
}

fn order(host: &Path) -> Vec<String> {
    fs::read_to_string(host.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The hooks in the order, without the program's own line.
fn hook_order(host: &Path) -> Vec<String> {
    order(host).into_iter().filter(|l| l != "program").collect()
}

fn stdin_of(host: &Path, name: &str) -> Value {
    let text = fs::read_to_string(host.join(format!("{name}.stdin")))
        .unwrap_or_else(|e| panic!("{name} left no stdin record: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name}'s stdin is not JSON: {e}: {text:?}"))
}

fn nul_list(host: &Path, file: &str) -> Vec<String> {
    let raw = fs::read(host.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// argv, env and stdin of a recorded hook, as config.json said.
fn check_record(host: &Path, kind: &str, name: &str, want: &BTreeMap<&str, Value>) {
    let argv = nul_list(host, &format!("{name}.argv"));
    let d = dir_for(kind, host);
    assert_eq!(
        argv,
        [
            argv0(kind, name),
            "-c".into(),
            record_script(name, &d),
            "extra-arg".into()
        ],
        "{name}: argv (args[0] is argv[0])"
    );
    let mut env = nul_list(host, &format!("{name}.env"));
    env.sort();
    let mut want_env: Vec<String> = HOOK_ENV.iter().map(|s| s.to_string()).collect();
    want_env.push(format!("HOOK_NAME={name}"));
    want_env.sort();
    assert_eq!(env, want_env, "{name}: the environment, exactly");
    let st = stdin_of(host, name);
    for (k, v) in want {
        assert_eq!(&st[*k], v, "{name}: state.{k} on stdin: {st}");
    }
    assert!(st["ociVersion"].is_string(), "{name}: {st}");
}

// ---------------------------------------------------------------------------------------

#[test]
fn all_six_hooks_in_order_with_state_args_and_env() {
    let Some(t) = Env::new("hooks_all") else {
        return;
    };
    let host = record_dir(&t);
    let b = hook_bundle(
        &t,
        &host,
        all_recorders(&host),
        &["sh", "-c", "echo program >> /hooks/order; exec sleep 1000"],
    );
    let id = t.id("hooks");
    t.create_ok(&b, &id);
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        order(&host),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );

    t.berth(&["start", &id]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || order(&host)
            .contains(&"program".to_string())),
        "the program did not run: {:?}",
        order(&host)
    );
    assert_eq!(
        hook_order(&host),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ],
        "after start"
    );
    // startContainer runs before the user program; poststart after it has started.
    let all = order(&host);
    let pos = |n: &str| all.iter().position(|l| l == n).unwrap();
    assert!(pos("startContainer") < pos("program"), "{all:?}");

    t.berth(&["kill", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(hook_order(&host).len(), 5, "poststop before delete");
    t.berth(&["delete", &id]).ok();
    assert_eq!(
        hook_order(&host),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );

    let bundle = fs::canonicalize(&b.dir).unwrap();
    let common = |status: &str, with_pid: bool| {
        let mut m = BTreeMap::from([
            ("id", json!(id)),
            ("bundle", json!(bundle)),
            ("status", json!(status)),
            (
                "annotations",
                json!({"org.berth.test": "hooks", "second": "two words"}),
            ),
        ]);
        if with_pid {
            m.insert("pid", json!(pid));
        }
        m
    };
    // The create-time hooks see "created", as runtime-tools' hooks_stdin expects of
    // prestart (runc says "creating").
    for (kind, status, with_pid) in [
        ("prestart", "created", true),
        ("createRuntime", "created", true),
        ("createContainer", "created", true),
        ("startContainer", "created", true),
        ("poststart", "running", true),
        ("poststop", "stopped", false),
    ] {
        check_record(&host, kind, kind, &common(status, with_pid));
    }
}

#[test]
fn run_runs_all_six_hooks() {
    let Some(t) = Env::new("hooks_run") else {
        return;
    };
    let host = record_dir(&t);
    let b = hook_bundle(
        &t,
        &host,
        all_recorders(&host),
        &["sh", "-c", "echo program >> /hooks/order"],
    );
    let id = t.id("hooks-run");
    let out = t.run(&b, &id);
    out.ok();
    assert_eq!(
        hook_order(&host),
        KINDS,
        "{out}\norder with the program: {:?}",
        order(&host)
    );
    let all = order(&host);
    let pos = |n: &str| all.iter().position(|l| l == n).unwrap();
    assert!(pos("startContainer") < pos("program"), "{all:?}");
    assert!(pos("program") < pos("poststop"), "{all:?}");
    assert_eq!(stdin_of(&host, "poststart")["status"], "running");
    assert_eq!(stdin_of(&host, "poststop")["status"], "stopped");
}

#[test]
fn several_hooks_of_a_kind_run_in_config_order() {
    let Some(t) = Env::new("hooks_many") else {
        return;
    };
    let host = record_dir(&t);
    let mut hooks = serde_json::Map::new();
    for k in KINDS {
        let list: Vec<Value> = (1..=3)
            .map(|i| recorder(k, &format!("{k}{i}"), &host))
            .collect();
        hooks.insert(k.into(), json!(list));
    }
    let b = hook_bundle(&t, &host, Value::Object(hooks), &["true"]);
    let id = t.id("many");
    t.run(&b, &id).ok();
    let want: Vec<String> = KINDS
        .iter()
        .flat_map(|k| (1..=3).map(move |i| format!("{k}{i}")))
        .collect();
    assert_eq!(hook_order(&host), want);
}

#[test]
fn failing_create_time_hook_fails_create_and_leaves_nothing() {
    let Some(t) = Env::new("hooks_fail_create") else {
        return;
    };
    for (i, failing_kind) in ["prestart", "createRuntime", "createContainer"]
        .into_iter()
        .enumerate()
    {
        for cmd in ["create", "run"] {
            let host = t.dir.join(format!("hooklog-{failing_kind}-{cmd}"));
            fs::create_dir_all(&host).unwrap();
            fs::set_permissions(&host, fs::Permissions::from_mode(0o777)).unwrap();
            let mut hooks = all_recorders(&host);
            // A recorder first, then the failing hook, then one that must not run.
            hooks[failing_kind] = json!([
                recorder(failing_kind, failing_kind, &host),
                failing(failing_kind, "broken", &host),
                recorder(failing_kind, "after-broken", &host),
            ]);
            let b = hook_bundle(
                &t,
                &host,
                hooks,
                &["sh", "-c", "echo program >> /hooks/order"],
            );
            let id = t.id("fail");
            let out = t.leaves_nothing(&id, || t.berth(&[cmd, "--bundle", b.path(), &id]));
            out.fails_with(&format!("config.json hooks.{failing_kind}[1]"));
            assert!(
                out.stderr.contains("hook-broke-broken"),
                "the hook's stderr\n{out}"
            );
            assert!(out.stderr.contains('3'), "the exit status\n{out}");
            t.berth(&["state", &id]).fails_with("does not exist");
            let mut want: Vec<String> = KINDS[..=i].iter().map(|s| s.to_string()).collect();
            want.push("broken".into());
            // Poststop may follow (the spec's step 13); nothing else may.
            let got: Vec<String> = order(&host)
                .into_iter()
                .filter(|l| l != "poststop")
                .collect();
            assert_eq!(got, want, "{failing_kind} failing, {cmd}\n{out}");
            assert!(!b.dir.join("rootfs/hooks/program").exists());
        }
    }
}

#[test]
fn failing_create_time_hook_still_runs_poststop() {
    let Some(t) = Env::new("hooks_fail_poststop") else {
        return;
    };
    // runtime-spec lifecycle: a failing prestart, createRuntime or createContainer hook
    // makes the runtime "continue the lifecycle at step 12" (destroy), and step 13 runs
    // the poststop hooks. runc's destroy() runs them too.
    for failing_kind in ["prestart", "createRuntime", "createContainer"] {
        let host = t.dir.join(format!("hooklog-{failing_kind}"));
        fs::create_dir_all(&host).unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o777)).unwrap();
        let mut hooks = all_recorders(&host);
        hooks[failing_kind] = json!([failing(failing_kind, "broken", &host)]);
        let b = hook_bundle(&t, &host, hooks, &["true"]);
        let id = t.id("fail");
        let out = t.leaves_nothing(&id, || t.berth(&["create", "--bundle", b.path(), &id]));
        out.fails_with(&format!("hooks.{failing_kind}[0]"));
        assert_eq!(
            order(&host).last().map(String::as_str),
            Some("poststop"),
            "{failing_kind} failed: poststop must run\norder {:?}\n{out}",
            order(&host)
        );
    }
}

#[test]
fn failing_start_container_hook_fails_start() {
    let Some(t) = Env::new("hooks_fail_start") else {
        return;
    };
    let host = record_dir(&t);
    let mut hooks = all_recorders(&host);
    hooks["startContainer"] = json!([
        recorder("startContainer", "startContainer", &host),
        failing("startContainer", "broken", &host),
    ]);
    let b = hook_bundle(
        &t,
        &host,
        hooks,
        &["sh", "-c", "echo program >> /hooks/order; sleep 1000"],
    );
    let id = t.id("failstart");
    t.create_ok(&b, &id);
    let pid = t.state(&id)["pid"].as_i64().unwrap() as i32;
    let out = t.berth(&["start", &id]);
    out.fails_with("config.json hooks.startContainer[1]");
    assert!(out.stderr.contains("hook-broke-broken"), "{out}");
    t.wait_status(&id, "stopped");
    assert!(
        !alive(pid),
        "the init outlived a failed startContainer hook"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        order(&host),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "broken"
        ],
        "neither the program nor poststart may run\n{out}"
    );
    t.berth(&["delete", &id]).ok();
    assert_eq!(order(&host).last().unwrap(), "poststop");
    assert!(!t.root.join(&id).exists());
}

#[test]
fn start_container_hook_that_ignores_stdin_does_not_kill_the_init() {
    let Some(t) = Env::new("hooks_sigpipe") else {
        return;
    };
    // A hook need not read the state on stdin. One that exits at once, with a state larger
    // than a pipe holds, leaves berth writing to a pipe nobody reads: EPIPE, and SIGPIPE.
    // The startContainer hook runs in the init: it must neither die of it, nor may
    // `start` then report a success while the program never ran.
    let hooks = json!({"startContainer": [{"path": "/bin/true", "args": ["true"]}]});
    let mut failures = Vec::new();
    for round in 0..15 {
        let b = t.bundle(|c| {
            c["hooks"] = hooks.clone();
            c["annotations"] = json!({"big": "x".repeat(150 << 10)});
            c["process"]["args"] = json!(["sh", "-c", "echo program-ran"]);
        });
        let id = t.id("pipe");
        let created = t.create_ok(&b, &id);
        let start = t.berth(&["start", &id]);
        let ran = wait_until(Duration::from_secs(3), || {
            created.stdout_now().contains("program-ran")
        });
        if start.code() != 0 || !ran {
            failures.push(format!(
                "round {round}: start exit {}, program ran: {ran}, stderr {:?}",
                start.code(),
                start.stderr
            ));
        }
        t.wait_status(&id, "stopped");
        t.berth(&["delete", &id]).ok();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn hooks_get_large_annotations() {
    let Some(t) = Env::new("hooks_big") else {
        return;
    };
    // Kubernetes allows 256 KiB of annotations on a pod; they all reach every hook's stdin,
    // whole. (Sizes around berth's 64 KiB sync message and the socket's own limit.)
    let mut failures = Vec::new();
    for kib in [1, 60, 100, 240] {
        let host = t.dir.join(format!("hooklog-{kib}"));
        fs::create_dir_all(&host).unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o777)).unwrap();
        let big = "a".repeat(kib << 10);
        let b = t.bundle_own_rootfs(
            |root| fs::create_dir_all(root.join("hooks")).unwrap(),
            |c| {
                c["hooks"] = all_recorders(&host);
                c["annotations"] = json!({"big": big});
                c["process"]["args"] = json!(["true"]);
                add_mount(
                    c,
                    json!({"destination": "/hooks", "type": "bind",
                           "source": host, "options": ["rbind", "rw"]}),
                );
            },
        );
        let id = t.id("big");
        let out = t.run(&b, &id);
        if out.code() != 0 {
            let why: String = out.stderr.chars().take(200).collect();
            failures.push(format!("{kib} KiB: run failed: {why}…"));
            continue;
        }
        for k in KINDS {
            let text = fs::read_to_string(host.join(format!("{k}.stdin"))).unwrap_or_default();
            let len = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["annotations"]["big"].as_str().map(str::len));
            if len != Some(big.len()) {
                failures.push(format!(
                    "{kib} KiB: {k} got {} bytes of stdin, annotation {len:?}",
                    text.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn failing_poststart_and_poststop_hooks_are_warnings() {
    let Some(t) = Env::new("hooks_fail_post") else {
        return;
    };
    let host = record_dir(&t);
    let mut hooks = all_recorders(&host);
    hooks["poststart"] = json!([
        failing("poststart", "poststart-broken", &host),
        recorder("poststart", "poststart", &host),
    ]);
    hooks["poststop"] = json!([
        failing("poststop", "poststop-broken", &host),
        recorder("poststop", "poststop", &host),
    ]);
    let b = hook_bundle(
        &t,
        &host,
        hooks,
        &["sh", "-c", "echo program >> /hooks/order; exec sleep 1000"],
    );
    let id = t.id("failpost");
    t.create_ok(&b, &id);
    let start = t.berth(&["start", &id]);
    start.ok();
    assert!(
        start.stderr.contains("hooks.poststart[0]")
            && start.stderr.contains("hook-broke-poststart-broken"),
        "a warning names the hook\n{start}"
    );
    assert_eq!(t.status(&id), "running");
    assert!(wait_until(Duration::from_secs(10), || order(&host)
        .contains(&"program".to_string())));
    let del = t.berth(&["delete", "--force", &id]);
    del.ok();
    assert!(
        del.stderr.contains("hooks.poststop[0]")
            && del.stderr.contains("hook-broke-poststop-broken"),
        "a warning names the hook\n{del}"
    );
    assert!(!t.root.join(&id).exists(), "delete left the state");
    assert_eq!(
        hook_order(&host),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart-broken",
            "poststart",
            "poststop-broken",
            "poststop"
        ]
    );
}

#[test]
fn hung_hook_is_killed_at_its_timeout() {
    let Some(t) = Env::new("hooks_timeout") else {
        return;
    };
    let host = record_dir(&t);
    let hung = |name: &str| {
        let d = host.to_str().unwrap();
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!(
                "read -r me rest < /proc/self/stat; echo $me > {d}/{name}.pid; echo {name} >> {d}/order; exec sleep 100")],
            "timeout": 1,
        })
    };
    // A hung prestart hook fails create after its timeout, and is killed.
    let mut hooks = all_recorders(&host);
    hooks["prestart"] = json!([hung("hung-prestart")]);
    let b = hook_bundle(&t, &host, hooks, &["true"]);
    let id = t.id("hung");
    let began = Instant::now();
    let out = t.leaves_nothing(&id, || t.berth(&["create", "--bundle", b.path(), &id]));
    out.fails_with("hooks.prestart[0]");
    assert!(out.stderr.contains("timed out"), "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "took {:?}",
        began.elapsed()
    );
    let pid: i32 = fs::read_to_string(host.join("hung-prestart.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the hung hook {pid} was not killed"
    );
    assert!(!order(&host).contains(&"createRuntime".to_string()));

    // A hung poststop hook is a warning: delete goes on, and so do the later hooks.
    let _ = fs::remove_file(host.join("order"));
    let mut hooks = all_recorders(&host);
    hooks["poststop"] = json!([
        hung("hung-poststop"),
        recorder("poststop", "poststop", &host)
    ]);
    let b = hook_bundle(&t, &host, hooks, &["true"]);
    let id = t.id("hung2");
    t.run_detached(&b, &id);
    t.wait_status(&id, "stopped");
    let began = Instant::now();
    let del = t.berth(&["delete", &id]);
    del.ok();
    assert!(del.stderr.contains("timed out"), "{del}");
    assert!(began.elapsed() < Duration::from_secs(8));
    assert_eq!(
        hook_order(&host)[5..],
        ["hung-poststop", "poststop"],
        "{:?}",
        order(&host)
    );
    let pid: i32 = fs::read_to_string(host.join("hung-poststop.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
}

#[test]
fn bad_hook_definitions_fail_create() {
    let Some(t) = Env::new("hooks_bad") else {
        return;
    };
    let host = record_dir(&t);
    let not_exec = t.dir.join("not-executable");
    fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    // (prestart hook, phrase)
    let table = [
        (
            json!({"path": "/nonexistent/hook"}),
            "No such file or directory",
        ),
        (json!({"path": "/bin/true", "timeout": 0}), "timeout"),
        (json!({"path": "/bin/true", "timeout": -1}), "timeout"),
        (json!({"path": not_exec}), "Permission denied"),
    ];
    for (hook, phrase) in table {
        let b = hook_bundle(&t, &host, json!({"prestart": [hook]}), &["true"]);
        let id = t.id("bad");
        let out = t.leaves_nothing(&id, || t.berth(&["create", "--bundle", b.path(), &id]));
        out.fails_with("config.json hooks.prestart[0]");
        assert!(out.stderr.contains(phrase), "{hook}: {phrase}\n{out}");
    }
    // Control: a hook that works lets create through.
    let b = hook_bundle(
        &t,
        &host,
        json!({"prestart": [{"path": "/bin/true"}]}),
        &["true"],
    );
    let id = t.id("good");
    t.create_ok(&b, &id);
    t.berth(&["delete", "--force", &id]).ok();
}
