//! `berth run`: in the foreground it waits for the container, forwards signals and exits
//! with the container's code; with `-d` it returns at once and leaves the container running.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Env, alive, drop_namespace, wait_until};

#[test]
fn foreground_run_exits_with_the_container_exit_code() {
    let Some(t) = Env::new("run_exit_codes") else {
        return;
    };
    // (process.args, expected exit code of berth run)
    let table: &[(&[&str], i32)] = &[
        (&["sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 0"], 0),
        (&["sh", "-c", "exit 255"], 255),
        (&["false"], 1),
        (&["true"], 0),
        (&["sh", "-c", "echo out; echo err >&2; exit 42"], 42),
    ];
    for (args, want) in table {
        let b = t.bundle(|c| c["process"]["args"] = json!(args));
        let id = t.id("code");
        let out = t.run(&b, &id);
        assert_eq!(out.code(), *want, "{args:?}\n{out}");
        assert!(
            !t.root.join(&id).exists(),
            "run left its state behind\n{out}"
        );
        if *want == 42 {
            assert_eq!(out.stdout, "out\n", "{out}");
            assert_eq!(out.stderr, "err\n", "{out}");
        }
    }
}

#[test]
fn foreground_run_never_hangs_when_the_process_exits_at_once() {
    let Some(t) = Env::new("run_quick_exit") else {
        return;
    };
    for round in 0..10 {
        let b = t.bundle(|c| c["process"]["args"] = json!(["true"]));
        let id = t.id("quick");
        let began = Instant::now();
        let out = t
            .try_berth(&["run", "--bundle", b.path(), &id], Duration::from_secs(10))
            .unwrap_or_else(|| panic!("round {round}: berth run of `true` hung"));
        assert_eq!(out.code(), 0, "{out}");
        assert!(began.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn process_killed_by_sigkill_gives_137() {
    let Some(t) = Env::new("run_137") else { return };
    // Without a pid namespace the shell is an ordinary process: its own SIGKILL kills it.
    let out = t.run_sh("kill -9 $$; echo survived", |c| drop_namespace(c, "pid"));
    assert_eq!(out.code(), 128 + 9, "{out}");
    assert!(!out.stdout.contains("survived"), "{out}");
}

#[test]
fn pid_1_ignores_its_own_sigkill() {
    let Some(t) = Env::new("run_pid1_kill") else {
        return;
    };
    // In a pid namespace the kernel protects the init from signals sent from inside it,
    // SIGKILL included: the shell goes on and exits normally.
    let out = t.run_sh("kill -9 $$; echo survived as $$", |_| {});
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "survived as 1\n", "{out}");
    // A child of pid 1 is not protected: killed by its own SIGKILL, its parent sees 137.
    let out = t.run_sh("sh -c 'kill -9 $$'; echo child=$?", |_| {});
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "child=137\n", "{out}");
}

#[test]
fn foreground_run_reports_kill_from_outside_as_137() {
    let Some(t) = Env::new("run_outside_kill") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "echo up; exec sleep 1000"]));
    let id = t.id("fg");
    let bg = t.spawn(&["run", "--bundle", b.path(), &id]);
    assert!(
        wait_until(Duration::from_secs(10), || bg.stdout_now().contains("up")),
        "container did not start: {:?}",
        bg.stdout_now()
    );
    assert_eq!(t.status(&id), "running");
    t.berth(&["kill", &id, "KILL"]).ok();
    let out = bg.wait(Duration::from_secs(10));
    assert_eq!(out.code(), 137, "{out}");
    assert!(
        !t.root.join(&id).exists(),
        "run left its state behind\n{out}"
    );
}

#[test]
fn foreground_run_forwards_sigterm() {
    let Some(t) = Env::new("run_forward_term") else {
        return;
    };
    let script = "trap 'echo got; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", script]));
    let id = t.id("fwd");
    let bg = t.spawn(&["run", "--bundle", b.path(), &id]);
    assert!(
        wait_until(Duration::from_secs(10), || bg
            .stdout_now()
            .contains("ready")),
        "container did not start: {:?}",
        bg.stdout_now()
    );
    // SAFETY: kill(2) on the berth process this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(bg.pid(), libc::SIGTERM) }, 0);
    let out = bg.wait(Duration::from_secs(10));
    assert_eq!(out.code(), 7, "{out}");
    assert_eq!(out.stdout, "ready\ngot\n", "{out}");
}

#[test]
fn foreground_run_forwards_other_signals() {
    let Some(t) = Env::new("run_forward_usr1") else {
        return;
    };
    let script = "trap 'echo usr1' USR1; trap 'echo hup' HUP; trap 'exit 9' INT; \
                  echo ready; while true; do sleep 0.05; done";
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", script]));
    let id = t.id("fwd2");
    let bg = t.spawn(&["run", "--bundle", b.path(), &id]);
    assert!(wait_until(Duration::from_secs(10), || bg
        .stdout_now()
        .contains("ready")));
    for (sig, word) in [(libc::SIGUSR1, "usr1"), (libc::SIGHUP, "hup")] {
        // SAFETY: kill(2) on the berth process this test spawned and has not yet reaped.
        unsafe { libc::kill(bg.pid(), sig) };
        assert!(
            wait_until(Duration::from_secs(10), || bg.stdout_now().contains(word)),
            "signal {sig} not forwarded: {:?}",
            bg.stdout_now()
        );
    }
    // SAFETY: as above.
    unsafe { libc::kill(bg.pid(), libc::SIGINT) };
    let out = bg.wait(Duration::from_secs(10));
    assert_eq!(out.code(), 9, "{out}");
}

#[test]
fn detached_run_returns_while_the_container_keeps_running() {
    let Some(t) = Env::new("run_detached") else {
        return;
    };
    let b = t.bundle(|c| {
        c["process"]["args"] = json!(["sh", "-c", "echo detached-up; exec sleep 1000"])
    });
    let id = t.id("det");
    let began = Instant::now();
    let out = t.run_detached(&b, &id);
    assert!(began.elapsed() < Duration::from_secs(10));
    let st = t.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));
    assert!(
        wait_until(Duration::from_secs(10), || out
            .stdout_now()
            .contains("detached-up")),
        "the detached container's output did not appear"
    );
    // Still running a while later: run -d did not take it down on exit.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.status(&id), "running");
    assert!(alive(pid));
    t.berth(&["delete", "--force", &id]).ok();
    assert!(!alive(pid));
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let Some(t) = Env::new("run_keep") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", "exit 5"]));
    let id = t.id("keep");
    let out = t.berth(&["run", "--keep", "--bundle", b.path(), &id]);
    assert_eq!(out.code(), 5, "{out}");
    let st = t.state(&id);
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"], 0, "{st}");
    t.berth(&["delete", &id]).ok();
    assert!(!t.root.join(&id).exists());
}

#[test]
fn foreground_run_relays_a_terminal_when_no_console_socket_is_given() {
    let Some(t) = Env::new("run-tty") else { return };
    let b = t.bundle(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "tty; stty size; read line; echo got:$line; exit 4"
        ]);
    });
    let id = t.id("tty");
    // `script` gives berth a terminal of its own, as a person at a terminal would.
    let inner = format!(
        "stty rows 21 cols 77; {} --root {} run --bundle {} {id}",
        crate::common::BERTH,
        t.root.display(),
        b.path()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"hello\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        text.contains("/dev/pts/0\n"),
        "no pty of the container's own devpts:\n{text}"
    );
    assert!(
        text.contains("21 77\n"),
        "the window size was not passed on:\n{text}"
    );
    assert!(
        text.contains("got:hello"),
        "input did not reach the container:\n{text}"
    );
    // script reports the exit code of its command.
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(!t.root.join(&id).exists(), "the container was not deleted");
}
