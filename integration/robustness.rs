//! Robustness under churn: many lifecycles in a row and at once, commands racing on one
//! container, and `create` killed at every step, all ending with nothing left behind:
//! no mounts, cgroups, state directories, fds of the test process, processes or zombies.
//!
//! The long variants run with `BERTH_LONG=1` (1000 cycles instead of 50); the numbers are
//! printed (`--nocapture` shows them).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{BERTH, Env, alive, cgroups_named, processes_under, reap, wait_until};

fn long() -> bool {
    std::env::var_os("BERTH_LONG").is_some_and(|v| v != "0")
}

/// Host mounts, but those other tests and tools make below /tmp meanwhile.
fn host_mounts(own: &Path) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let p = l.split(' ').nth(4).unwrap_or("");
            !p.starts_with("/tmp/") || Path::new(p).starts_with(own)
        })
        .map(str::to_string)
        .collect()
}

/// This test process's fds that lead into the test's directory (bundles, state, output
/// files, sockets bound there), and all of them, for the record.
fn own_fds(dir: &Path) -> (Vec<String>, usize) {
    let mut mine = Vec::new();
    let mut all = 0;
    for e in fs::read_dir("/proc/self/fd").unwrap().flatten() {
        all += 1;
        if let Ok(t) = fs::read_link(e.path())
            && t.starts_with(dir)
        {
            mine.push(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                t.display()
            ));
        }
    }
    (mine, all)
}

/// Zombies among `pids` (the test's own container inits, after reaping them), and zombie
/// children of a berth process (berth failing to wait for its own), that stay zombies for
/// a second. Zombie children of this test process that are not ours belong to other tests
/// running meanwhile, and are theirs to reap.
fn zombies(pids: &[i32]) -> Vec<String> {
    let berth_pids: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "berth"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let scan = || {
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(pid) = name.parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let zombie = f.next() == Some("Z");
            let ppid = f.next().unwrap_or("").to_string();
            let _ = head;
            if zombie && (pids.contains(&pid) || berth_pids.contains(&ppid)) {
                out.push(format!("{pid} {}", stat.trim()));
            }
        }
        out
    };
    let first = scan();
    if first.is_empty() {
        return first;
    }
    std::thread::sleep(Duration::from_secs(1));
    let second = scan();
    first.into_iter().filter(|z| second.contains(z)).collect()
}

/// What must be as it was: host mounts, cgroups named `tag`, the state directory,
/// processes in the test's directory, fds into it.
struct Baseline {
    mounts: Vec<String>,
    fds_total: usize,
}

fn baseline(t: &Env) -> Baseline {
    Baseline {
        mounts: host_mounts(&t.dir),
        fds_total: own_fds(&t.dir).1,
    }
}

fn assert_clean(t: &Env, tag: &str, b: &Baseline, inits: &[i32], ctx: &str) {
    for &pid in inits {
        reap(pid, Duration::from_secs(5));
    }
    let left: Vec<i32> = inits.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "{ctx}: inits still alive: {left:?}");
    let now = host_mounts(&t.dir);
    let new: Vec<&String> = now.iter().filter(|l| !b.mounts.contains(l)).collect();
    assert!(new.is_empty(), "{ctx}: mounts left: {new:#?}");
    let cg = cgroups_named(tag);
    assert!(cg.is_empty(), "{ctx}: cgroups left: {cg:#?}");
    let states: Vec<String> = fs::read_dir(&t.root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        states.is_empty(),
        "{ctx}: state directories left: {states:?}"
    );
    let procs = processes_under(&t.dir);
    assert!(procs.is_empty(), "{ctx}: processes left: {procs:?}");
    let (fds, total) = own_fds(&t.dir);
    assert!(
        fds.is_empty(),
        "{ctx}: fds of the test process left: {fds:?}"
    );
    let z = zombies(inits);
    assert!(z.is_empty(), "{ctx}: zombies: {z:#?}");
    eprintln!(
        "{ctx}: no mounts, cgroups, state directories, processes or zombies left; fds of the test process {} before, {total} after (none into the test's directory)",
        b.fds_total
    );
}

fn pid_of(t: &Env, id: &str) -> i32 {
    t.state(id)["pid"].as_i64().unwrap_or(0) as i32
}

#[test]
fn create_start_delete_cycles_leave_nothing() {
    let Some(t) = Env::new("robust_cycles") else {
        return;
    };
    let n = if long() { 1000 } else { 50 };
    let b = t.bundle(|c| c["process"]["args"] = json!(["true"]));
    let base = baseline(&t);
    let began = Instant::now();
    let mut inits = Vec::new();
    for i in 0..n {
        let id = t.id("robust-cycle");
        t.create_ok(&b, &id);
        let pid = pid_of(&t, &id);
        t.berth(&["start", &id]).ok();
        t.wait_status(&id, "stopped");
        t.berth(&["delete", &id]).ok();
        reap(pid, Duration::from_secs(5));
        inits.push(pid);
        if i % 100 == 99 {
            eprintln!("cycles: {} in {:?}", i + 1, began.elapsed());
        }
    }
    let took = began.elapsed();
    assert_clean(&t, "robust-cycle", &base, &inits, &format!("{n} cycles"));
    eprintln!(
        "{n} create/start/delete cycles in {took:?} ({:?} each)",
        took / n
    );
}

#[test]
fn concurrent_lifecycles_leave_nothing() {
    let Some(t) = Env::new("robust_concurrent") else {
        return;
    };
    let t = Arc::new(t);
    let b = Arc::new(t.bundle(|c| c["process"]["args"] = json!(["sleep", "1"])));
    let base = baseline(&t);
    let rounds = if long() { 5 } else { 1 };
    let began = Instant::now();
    let mut inits = Vec::new();
    for _ in 0..rounds {
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let (t, b) = (Arc::clone(&t), Arc::clone(&b));
                std::thread::spawn(move || {
                    let id = t.id("robust-par");
                    t.create_ok(&b, &id);
                    let pid = pid_of(&t, &id);
                    t.berth(&["start", &id]).ok();
                    let st = t.state(&id);
                    assert_eq!(st["id"], id.as_str());
                    // Half are killed (unless already done), half run out; all are
                    // deleted.
                    if i % 2 == 0 {
                        let out = t.berth(&["kill", &id, "KILL"]);
                        assert!(
                            out.status.success() || out.stderr.contains("stopped"),
                            "{out}"
                        );
                    }
                    t.wait_status(&id, "stopped");
                    t.berth(&["delete", &id]).ok();
                    pid
                })
            })
            .collect();
        for th in threads {
            inits.push(th.join().expect("a lifecycle failed"));
        }
    }
    let took = began.elapsed();
    assert_clean(&t, "robust-par", &base, &inits, "50 concurrent lifecycles");
    eprintln!("{rounds} x 50 concurrent lifecycles in {took:?}");
}

/// `berth state` output: absent ("does not exist") or a whole, parseable state.
fn state_is_sane(out: &crate::common::Out, id: &str) -> Result<(), String> {
    if out.status.success() {
        let v: Value = serde_json::from_str(&out.stdout)
            .map_err(|e| format!("state is not JSON ({e}): {out}"))?;
        if v["id"] != id || v["status"].as_str().is_none() {
            return Err(format!("state is wrong: {out}"));
        }
        Ok(())
    } else if out.stderr.contains("does not exist")
        // Between delete removing state.json and removing the directory.
        || out.stderr.contains("is still being created")
    {
        Ok(())
    } else {
        Err(format!("state failed otherwise: {out}"))
    }
}

#[test]
fn concurrent_delete_kill_and_state_on_one_id() {
    let Some(t) = Env::new("robust_one_id") else {
        return;
    };
    let t = Arc::new(t);
    let b = Arc::new(t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"])));
    let base = baseline(&t);
    let rounds = if long() { 100 } else { 15 };
    let mut inits = Vec::new();
    for round in 0..rounds {
        let id = t.id("robust-one");
        t.run_detached(&b, &id);
        inits.push(pid_of(&t, &id));
        let mut threads = Vec::new();
        for k in 0..6 {
            let (t, id) = (Arc::clone(&t), id.clone());
            threads.push(std::thread::spawn(move || -> Result<(), String> {
                for _ in 0..4 {
                    let out = match k {
                        0 | 1 => t.berth(&["delete", "--force", &id]),
                        2 | 3 => t.berth(&["kill", &id, if k == 2 { "KILL" } else { "TERM" }]),
                        _ => t.berth(&["state", &id]),
                    };
                    if out.status.signal_killed() {
                        return Err(format!("berth crashed: {out}"));
                    }
                    if k >= 4 {
                        state_is_sane(&out, &id)?;
                    }
                }
                Ok(())
            }));
        }
        for th in threads {
            th.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        // After the storm: one more delete finds it gone or deletes it; then it is gone.
        t.berth(&["delete", "--force", &id]).ok();
        let out = t.berth(&["state", &id]);
        out.fails_with("does not exist");
    }
    assert_clean(&t, "robust-one", &base, &inits, "delete/kill/state races");
}

trait KilledBySignal {
    fn signal_killed(&self) -> bool;
}

impl KilledBySignal for std::process::ExitStatus {
    fn signal_killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.signal().is_some()
    }
}

/// Reap dead inits of killed creates that were reparented to this test process (a
/// subreaper, as containerd's shim is): berth processes that had made a session of their
/// own (the init does, first thing) and exited before exec. A shim reaps every child; this
/// test reaps only those, and leaves other tests' children to them.
fn reap_orphaned_inits() {
    let me = std::process::id().to_string();
    std::thread::sleep(Duration::from_millis(50));
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if head.ends_with("(berth")
            && f.len() > 4
            && f[0] == "Z"
            && f[1] == me
            && f[3] == pid.to_string()
        {
            // SAFETY: waitpid on a dead child of ours.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

/// Ignored until fixed: a create killed between making the cgroup and recording the
/// state leaves the cgroup, and once cloned the init (waiting for `start`), behind;
/// `delete --force` finds no state.json and removes only the directory (SECURITY.md).
#[test]
fn create_killed_at_each_step_is_cleaned_by_delete_force() {
    let Some(t) = Env::new("robust_sigkill") else {
        return;
    };
    // Delays (µs) that land in each step of create: bundle load, state dir, socket,
    // cgroup, clone, the init's set-up (mounts, devices, pivot), the state record; measured
    // on a full create first, then spread over it.
    let b = t.bundle_own_rootfs(
        |_| {},
        |c| {
            c["process"]["args"] = json!(["sleep", "1000"]);
            c["linux"]["resources"]["pids"] = json!({"limit": 100});
        },
    );
    let id = t.id("robust-kill-probe");
    let began = Instant::now();
    t.create_ok(&b, &id);
    let full = began.elapsed();
    t.berth(&["delete", "--force", &id]).ok();
    let steps = if long() { 200 } else { 40 };
    let base = baseline(&t);
    let mut inits = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for i in 0..steps {
        let delay = full.mul_f64(1.2 * i as f64 / steps as f64);
        let id = t.id("robust-kill");
        let mut cmd = Command::new(BERTH);
        cmd.arg("--root")
            .arg(&t.root)
            .args(["create", "--bundle", b.path(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the kill takes berth and nothing else.
        cmd.process_group(0);
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let st = child.wait().unwrap();
        reap_orphaned_inits();
        let what = if st.success() { "finished" } else { "killed" };
        // The init, if one was made and recorded.
        let out = t.berth(&["state", &id]);
        let state = if out.status.success() {
            let v: Value = serde_json::from_str(&out.stdout).unwrap();
            if let Some(p) = v["pid"].as_i64() {
                inits.push(p as i32);
            }
            v["status"].as_str().unwrap_or("?").to_string()
        } else {
            "none".to_string()
        };
        *outcomes.entry(format!("{what}/{state}")).or_default() += 1;
        let out = t.berth(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "delete --force after create was killed at {delay:?}: {out}"
        );
        let mut left = Vec::new();
        let gone = wait_until(Duration::from_secs(5), || {
            left = processes_under(&t.dir);
            left.is_empty() && cgroups_named(&id).is_empty() && !t.root.join(&id).exists()
        });
        if !gone {
            failures.push(format!(
                "killed at {delay:?} ({what}, state {state}): after delete --force: processes {left:?}, {} cgroups, state dir {}",
                cgroups_named(&id).len(),
                t.root.join(&id).exists()
            ));
            // Clean up by hand, so the next step starts clean.
            for p in &left {
                if let Some(pid) = p.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
                    // SAFETY: kill(2) on a process whose root is this test's rootfs.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    inits.push(pid);
                }
            }
            for cg in cgroups_named(&id).iter().rev() {
                let _ = fs::remove_dir(cg);
            }
        }
    }
    eprintln!("create killed at {steps} points over {full:?}: {outcomes:?}");
    assert!(
        failures.is_empty(),
        "{} of {steps} kills left something behind:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_clean(
        &t,
        "robust-kill",
        &base,
        &inits,
        "create killed at each step",
    );
}
