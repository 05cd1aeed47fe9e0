//! The spec's lifecycle, command by command: create → created, start → running,
//! kill → stopped, delete → gone; and what each command refuses to do.

use std::fs;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, alive, shared_rootfs, wait_until};

const SLEEP: [&str; 2] = ["sleep", "1000"];

fn pid_of(state: &Value) -> i32 {
    state["pid"].as_i64().expect("state has a numeric pid") as i32
}

#[test]
fn create_start_kill_delete() {
    let Some(t) = Env::new("create_start_kill_delete") else {
        return;
    };
    let b = t.bundle(|c| {
        c["process"]["args"] = json!(["sh", "-c", "echo started as pid $$; exec sleep 1000"]);
        c["annotations"] = json!({ "org.berth.test": "yes" });
    });
    let id = t.id("life");
    let pid_file = t.dir.join("init.pid");
    let created = t.create(&b, &id, &["--pid-file", pid_file.to_str().unwrap()]);
    created.ok();

    // created: a live init, recorded in the state and the pid file, program not yet run.
    let st = t.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b.path()));
    assert_eq!(st["rootfs"], json!(shared_rootfs().to_str().unwrap()));
    assert_eq!(st["annotations"]["org.berth.test"], "yes", "{st}");
    let pid = pid_of(&st);
    assert!(pid > 0, "{st}");
    assert!(
        fs::metadata(format!("/proc/{pid}")).is_ok(),
        "/proc/{pid} must exist"
    );
    assert!(alive(pid));
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(created.stdout_now(), "", "the program ran before start");

    // start: the same init becomes the program.
    t.berth(&["start", &id]).ok();
    let st = t.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(pid_of(&st), pid);
    assert!(
        wait_until(Duration::from_secs(10), || created
            .stdout_now()
            .contains("started as pid 1")),
        "the container's output did not appear: {:?}",
        created.stdout_now()
    );

    // kill with the default TERM: `sleep` as pid 1 has no handler, so the kernel drops it.
    t.berth(&["kill", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.status(&id), "running");
    assert!(alive(pid));

    t.berth(&["kill", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    let st = t.state(&id);
    assert_eq!(pid_of(&st), 0, "a stopped container reports pid 0: {st}");
    assert!(!alive(pid));

    // kill of a stopped container is an error.
    t.berth(&["kill", &id, "KILL"]).fails_with("not running");

    t.berth(&["delete", &id]).ok();
    assert!(!t.root.join(&id).exists(), "state directory left behind");
    t.berth(&["state", &id]).fails_with("does not exist");
    let list = t.berth(&["list", "-q"]);
    list.ok();
    assert!(!list.stdout.contains(&id), "{list}");
}

#[test]
fn kill_accepts_every_spelling_of_kill() {
    let Some(t) = Env::new("kill_spellings") else {
        return;
    };
    for spelling in ["KILL", "9", "SIGKILL", "kill", "sigkill"] {
        let b = t.bundle(|c| c["process"]["args"] = json!(SLEEP));
        let id = t.id("spell");
        t.run_detached(&b, &id);
        let pid = pid_of(&t.state(&id));
        assert_eq!(t.status(&id), "running");
        t.berth(&["kill", &id, spelling]).ok();
        t.wait_status(&id, "stopped");
        assert!(!alive(pid), "kill {spelling}: init {pid} still alive");
        t.berth(&["delete", &id]).ok();
    }
}

#[test]
fn kill_delivers_the_named_signal() {
    let Some(t) = Env::new("kill_named_signal") else {
        return;
    };
    let script = "for s in HUP USR1 USR2 TERM; do trap \"echo got-$s\" $s; done; \
                  echo ready; while true; do sleep 0.05; done";
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", script]));
    let id = t.id("sig");
    let out = t.run_detached(&b, &id);
    assert!(wait_until(Duration::from_secs(10), || out
        .stdout_now()
        .contains("ready")));
    // (spelling given to kill, the name the trap prints)
    let table = [
        ("1", "HUP"),
        ("USR1", "USR1"),
        ("SIGUSR2", "USR2"),
        ("sigterm", "TERM"),
    ];
    for (spelling, name) in table {
        t.berth(&["kill", &id, spelling]).ok();
        let want = format!("got-{name}");
        assert!(
            wait_until(Duration::from_secs(10), || out.stdout_now().contains(&want)),
            "kill {spelling}: the trap did not print {want}: {:?}",
            out.stdout_now()
        );
    }
    // Each signal was caught: the container is still running.
    assert_eq!(t.status(&id), "running");
    t.berth(&["delete", "--force", &id]).ok();
}

#[test]
fn kill_of_a_created_container_stops_it_before_the_program_runs() {
    let Some(t) = Env::new("kill_created") else {
        return;
    };
    let b =
        t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo program ran; sleep 1000"]));
    let id = t.id("kc");
    let out = t.create_ok(&b, &id);
    let pid = pid_of(&t.state(&id));
    // Default TERM: the waiting init must honour it even as pid 1 of its namespace.
    t.berth(&["kill", &id]).ok();
    t.wait_status(&id, "stopped");
    assert!(!alive(pid));
    t.berth(&["start", &id]).fails_with("stopped");
    assert_eq!(
        out.stdout_now(),
        "",
        "the program ran although never started"
    );
    t.berth(&["delete", &id]).ok();
    assert!(!t.root.join(&id).exists());
}

#[test]
fn delete_refuses_a_live_container_without_force() {
    let Some(t) = Env::new("delete_without_force") else {
        return;
    };
    for phase in ["created", "running"] {
        let b = t.bundle(|c| c["process"]["args"] = json!(SLEEP));
        let id = t.id(phase);
        t.create_ok(&b, &id);
        if phase == "running" {
            t.berth(&["start", &id]).ok();
        }
        let pid = pid_of(&t.state(&id));

        t.berth(&["delete", &id]).fails_with("not stopped");
        assert!(
            t.root.join(&id).is_dir(),
            "{phase}: state directory removed by a refused delete"
        );
        assert_eq!(
            t.status(&id),
            phase,
            "{phase}: a refused delete changed the container"
        );
        assert!(alive(pid), "{phase}: a refused delete killed the init");

        t.berth(&["delete", "--force", &id]).ok();
        assert!(
            !alive(pid),
            "{phase}: init {pid} still alive after delete --force"
        );
        assert!(
            !t.root.join(&id).exists(),
            "{phase}: state directory left by delete --force"
        );
        t.berth(&["state", &id]).fails_with("does not exist");
    }
}

#[test]
fn start_only_starts_a_created_container() {
    let Some(t) = Env::new("start_twice") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo once; exec sleep 1000"]));
    let id = t.id("st");
    let out = t.create_ok(&b, &id);
    t.berth(&["start", &id]).ok();
    assert!(wait_until(Duration::from_secs(10), || out
        .stdout_now()
        .contains("once")));

    t.berth(&["start", &id]).fails_with("running");
    assert_eq!(t.status(&id), "running");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        out.stdout_now().matches("once").count(),
        1,
        "the program ran twice"
    );

    t.berth(&["kill", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    t.berth(&["start", &id]).fails_with("stopped");
    t.berth(&["delete", &id]).ok();
}

#[test]
fn list_shows_every_container() {
    let Some(t) = Env::new("list") else { return };
    let b = t.bundle(|c| c["process"]["args"] = json!(SLEEP));
    let created = t.id("a-created");
    let running = t.id("b-running");
    t.create_ok(&b, &created);
    t.run_detached(&b, &running);
    let created_pid = pid_of(&t.state(&created));
    let running_pid = pid_of(&t.state(&running));

    let q = t.berth(&["list", "-q"]);
    q.ok();
    let mut want = vec![created.clone(), running.clone()];
    want.sort();
    assert_eq!(q.stdout.lines().collect::<Vec<_>>(), want, "{q}");

    let table = t.berth(&["list"]);
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    for (id, pid, status) in [
        (&created, created_pid, "created"),
        (&running, running_pid, "running"),
    ] {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}\n{table}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], pid.to_string(), "{table}");
        assert_eq!(cells[2], status, "{table}");
        assert_eq!(cells[3], b.path(), "{table}");
    }

    let js = t.berth(&["list", "--format", "json"]);
    js.ok();
    let v: Value = serde_json::from_str(&js.stdout).unwrap_or_else(|e| panic!("{e}\n{js}"));
    let arr = v.as_array().unwrap_or_else(|| panic!("not an array\n{js}"));
    assert_eq!(arr.len(), 2, "{js}");
    for (id, pid, status) in [
        (&created, created_pid, "created"),
        (&running, running_pid, "running"),
    ] {
        let e = arr
            .iter()
            .find(|e| e["id"] == json!(id))
            .unwrap_or_else(|| panic!("no entry for {id}\n{js}"));
        assert_eq!(e["status"], status, "{js}");
        assert_eq!(pid_of(e), pid, "{js}");
        assert_eq!(e["bundle"], json!(b.path()), "{js}");
    }

    // Empty root: empty list (the header only for the table).
    for id in [&created, &running] {
        t.berth(&["delete", "--force", id]).ok();
    }
    assert_eq!(t.berth(&["list", "-q"]).stdout, "");
    let v: Value = serde_json::from_str(&t.berth(&["list", "--format", "json"]).stdout).unwrap();
    assert!(
        v.as_array().is_some_and(|a| a.is_empty()) || v.is_null(),
        "{v}"
    );
}

#[test]
fn longest_valid_id_goes_through_the_lifecycle() {
    let Some(t) = Env::new("longest_id") else {
        return;
    };
    let prefix = t.id("long");
    let id = format!("{prefix}{}", "x".repeat(255 - prefix.len()));
    assert_eq!(id.len(), 255);
    t.track(&id);
    let b = t
        .bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo long-id-ok; exec sleep 1000"]));
    let out = t.create_ok(&b, &id);
    assert_eq!(t.status(&id), "created");
    t.berth(&["start", &id]).ok();
    assert!(wait_until(Duration::from_secs(10), || out
        .stdout_now()
        .contains("long-id-ok")));
    assert_eq!(t.status(&id), "running");
    t.berth(&["delete", "--force", &id]).ok();
    assert!(!t.root.join(&id).exists());
}
