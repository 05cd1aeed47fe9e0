//! Bad input: every case fails with a non-zero exit and a message naming the problem, and
//! leaves the host as it was: the same mounts, the same state directory, no cgroup named
//! after the container, no process left in the bundle.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Bundle, Env, Out, alive};

/// `create` and `run` of `b` must both fail with `phrase` and leave nothing behind;
/// returns what `create` said.
fn refused(t: &Env, b: &Bundle, phrase: &str) -> Out {
    let mut outs = Vec::new();
    for cmd in ["create", "run"] {
        let id = t.id("bad");
        let out = t.leaves_nothing(&id, || t.berth(&[cmd, "--bundle", b.path(), &id]));
        out.fails_with(phrase);
        assert!(out.stderr.starts_with("berth: "), "{out}");
        t.berth(&["state", &id]).fails_with("does not exist");
        assert_eq!(
            t.berth(&["list", "-q"]).stdout,
            "",
            "{cmd} left a container listed"
        );
        outs.push(out);
    }
    outs.swap_remove(0)
}

#[test]
fn invalid_config_json() {
    let Some(t) = Env::new("invalid_json") else {
        return;
    };
    let table = [
        "{ not json",
        "",
        "[]",
        "{\"ociVersion\": \"1.1.0\", \"process\": 7}",
        "{\"root\": {",
    ];
    for text in table {
        let b = t.bundle(|_| {});
        fs::write(b.dir.join("config.json"), text).unwrap();
        refused(&t, &b, "config.json");
    }
}

#[test]
fn missing_config_json() {
    let Some(t) = Env::new("missing_config") else {
        return;
    };
    let b = t.bundle(|_| {});
    fs::remove_file(b.dir.join("config.json")).unwrap();
    refused(&t, &b, "config.json");
}

#[test]
fn process_args_missing_or_empty() {
    let Some(t) = Env::new("bad_args") else {
        return;
    };
    type Edit = fn(&mut Value);
    // (case, config change, key phrase of the message)
    let table: &[(&str, Edit, &str)] = &[
        (
            "empty array",
            |c| c["process"]["args"] = json!([]),
            "process.args",
        ),
        (
            "missing",
            |c| {
                c["process"].as_object_mut().unwrap().remove("args");
            },
            "process.args",
        ),
        (
            "relative cwd",
            |c| c["process"]["cwd"] = json!("tmp"),
            "process.cwd",
        ),
    ];
    for (case, edit, phrase) in table {
        eprintln!("case: {case}");
        let b = t.bundle(edit);
        refused(&t, &b, phrase);
    }
}

#[test]
fn missing_or_bad_rootfs() {
    let Some(t) = Env::new("bad_rootfs") else {
        return;
    };
    let missing = t.dir.join("no-such-rootfs");
    let file = t.dir.join("a-file");
    fs::write(&file, "").unwrap();
    for (path, phrase) in [
        (missing.to_str().unwrap(), "root.path"),
        ("relative-missing", "root.path"),
        (file.to_str().unwrap(), "not a directory"),
    ] {
        let b = t.bundle(|c| c["root"]["path"] = json!(path));
        refused(&t, &b, phrase);
    }
    assert!(!missing.exists(), "the missing rootfs was created");
}

#[test]
fn nonexistent_executable() {
    let Some(t) = Env::new("no_executable") else {
        return;
    };
    // (process.args, key phrase)
    let table: &[(&[&str], &str)] = &[
        (&["nope"], "executable file not found"),
        (&["nope", "with", "args"], "executable file not found"),
        (&["/bin/nope"], "no such file or directory"),
        (&["/etc"], "is a directory"),
    ];
    for (args, phrase) in table {
        // An own rootfs: a leftover init would be found by its root under t.dir.
        let b = t.bundle_own_rootfs(|_| {}, |c| c["process"]["args"] = json!(args));
        let out = refused(&t, &b, phrase);
        assert!(
            out.stderr.contains("process.args"),
            "the message names the field\n{out}"
        );
    }
}

#[test]
fn terminal_without_console_socket() {
    let Some(t) = Env::new("terminal") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["terminal"] = json!(true));
    // `run` in the foreground relays the terminal itself (run.rs); create and a detached
    // run have nobody to hand it to.
    for cmd in [&["create"][..], &["run", "--detach"][..]] {
        let id = t.id("bad");
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--bundle", b.path(), &id]);
        let out = t.leaves_nothing(&id, || t.berth(&args));
        out.fails_with("console-socket");
        t.berth(&["state", &id]).fails_with("does not exist");
    }
}

#[test]
fn duplicate_id_leaves_the_first_container_alone() {
    let Some(t) = Env::new("duplicate_id") else {
        return;
    };
    let first =
        t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo first; exec sleep 1000"]));
    let second = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo second"]));
    let id = t.id("dup");
    let created = t.create_ok(&first, &id);
    let before = t.berth(&["state", &id]).stdout;
    let pid = t.state(&id)["pid"].as_i64().unwrap() as i32;
    let state_file = fs::read(t.root.join(&id).join("state.json")).unwrap();

    for cmd in ["create", "run"] {
        let out = t.leaves_nothing(&id, || t.berth(&[cmd, "--bundle", second.path(), &id]));
        out.fails_with("already exists");
        assert_eq!(
            t.berth(&["state", &id]).stdout,
            before,
            "{cmd} changed the first container"
        );
        assert_eq!(
            fs::read(t.root.join(&id).join("state.json")).unwrap(),
            state_file
        );
        assert!(alive(pid), "{cmd} killed the first container's init");
        assert!(!out.stdout.contains("second"), "{out}");
    }

    t.berth(&["start", &id]).ok();
    assert!(crate::common::wait_until(
        std::time::Duration::from_secs(10),
        || created.stdout_now().contains("first")
    ));
    assert!(!created.stdout_now().contains("second"));
    assert_eq!(t.status(&id), "running");
}

#[test]
fn unknown_id() {
    let Some(t) = Env::new("unknown_id") else {
        return;
    };
    let id = t.id("nosuch");
    let table: &[&[&str]] = &[
        &["state", &id],
        &["start", &id],
        &["kill", &id],
        &["kill", &id, "KILL"],
        &["delete", &id],
    ];
    for args in table {
        let out = t.leaves_nothing(&id, || t.berth(args));
        out.fails_with("does not exist");
        assert!(out.stderr.contains(&id), "the message names the id\n{out}");
    }
    // As runc's: a forced delete of a missing container succeeds (engines clean up with it).
    t.leaves_nothing(&id, || t.berth(&["delete", "--force", &id]))
        .ok();
}

#[test]
fn bad_signal_name_leaves_the_container_running() {
    let Some(t) = Env::new("bad_signal") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = t.id("sig");
    t.run_detached(&b, &id);
    let pid = t.state(&id)["pid"].as_i64().unwrap() as i32;
    for sig in ["FOO", "SIGFOO", "0", "65", "KILLX", "9x", "RTMIN+99"] {
        let out = t.leaves_nothing(&id, || t.berth(&["kill", &id, sig]));
        out.fails_with("unknown signal");
        assert!(
            out.stderr.contains(sig),
            "the message names the signal\n{out}"
        );
        assert_eq!(t.status(&id), "running", "kill {sig}");
        assert!(alive(pid), "kill {sig} killed the init");
    }
}

#[test]
fn hostile_ids_are_refused() {
    let Some(t) = Env::new("hostile_ids") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["true"]));
    let long = "a".repeat(300);
    let table = [
        "../x", "a/b", "", &long, "..", ".", "/abs", "a b", "x\ny", "é",
    ];
    let needle = format!("it-{}-hostile", std::process::id());
    let escape = t.dir.join("x");
    let before_abs = Path::new("/abs").exists();
    for id in table {
        for args in [
            &["create", "--bundle", b.path(), id][..],
            &["state", id],
            &["run", "--bundle", b.path(), id],
        ] {
            let out = t.leaves_nothing(&needle, || t.berth(args));
            out.fails_with("invalid container id");
            assert!(!escape.exists(), "id {id:?} made {escape:?}");
            assert_eq!(
                Path::new("/abs").exists(),
                before_abs,
                "id {id:?} touched /abs"
            );
            assert!(!t.root.join("a").exists(), "id {id:?} made a directory");
        }
    }
    // Valid ids around the limit: 255 bytes is accepted by `state` as a well-formed id.
    t.berth(&["state", &"b".repeat(255)])
        .fails_with("does not exist");
}

#[test]
fn no_process_creates_but_cannot_start() {
    let Some(t) = Env::new("no_process") else {
        return;
    };
    // The spec makes `process` optional for create and required for start.
    let b = t.bundle(|c| {
        c.as_object_mut().unwrap().remove("process");
    });
    let id = t.id("noproc");
    t.create_ok(&b, &id);
    let pid = t.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(t.status(&id), "created");
    t.berth(&["start", &id]).fails_with("config.json process");
    t.wait_status(&id, "stopped");
    assert!(!alive(pid));
    t.berth(&["delete", &id]).ok();
    // `run` is create and start: it fails, and leaves nothing.
    let id = t.id("noproc-run");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.fails_with("config.json process");
    t.berth(&["state", &id]).fails_with("does not exist");
}
