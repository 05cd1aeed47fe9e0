//! The container's filesystem as seen from inside: the standard mounts, the read-only
//! root, /dev, masked and read-only paths, bind mounts, and mount destinations that try to
//! leave the root through symlinks or `..`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::common::{Env, MountLine, add_mount, base_dir, parse_mountinfo};

fn find<'a>(mounts: &'a [MountLine], point: &str) -> Option<&'a MountLine> {
    // The last mount on a point is the visible one.
    mounts.iter().rev().find(|m| m.mount_point == point)
}

#[test]
fn standard_mounts_are_in_place() {
    let Some(t) = Env::new("standard_mounts") else {
        return;
    };
    let out = t.run_sh("cat /proc/self/mountinfo", |_| {});
    out.ok();
    let mounts = parse_mountinfo(&out.stdout);
    // (mount point, filesystem type, options that must be set)
    let table: &[(&str, &str, &[&str])] = &[
        ("/proc", "proc", &[]),
        ("/dev", "tmpfs", &["nosuid"]),
        ("/dev/pts", "devpts", &["nosuid", "noexec"]),
        ("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev"]),
        ("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        ("/sys", "sysfs", &["ro", "nosuid", "noexec", "nodev"]),
    ];
    for (point, fstype, opts) in table {
        let m = find(&mounts, point).unwrap_or_else(|| panic!("no mount at {point}\n{out}"));
        assert_eq!(&m.fstype, fstype, "{point}\n{out}");
        for o in *opts {
            assert!(
                m.options.iter().any(|x| x == o),
                "{point} lacks {o}: {:?}\n{out}",
                m.options
            );
        }
    }
    assert!(find(&mounts, "/").is_some(), "no root mount\n{out}");
    // Nothing of the host's tree is left mounted: every mount point is a container path.
    let host_base = base_dir().to_str().unwrap();
    for m in &mounts {
        assert!(
            !m.mount_point.starts_with(host_base),
            "host path mounted: {m:?}\n{out}"
        );
    }
    // pivot_root stacks the old root on "/": it must have been detached, leaving exactly
    // one "/" mount, and every other mount is one the config asked for.
    let roots = mounts.iter().filter(|m| m.mount_point == "/").count();
    assert_eq!(roots, 1, "the old root is still mounted\n{out}");
    for m in &mounts {
        let ok = m.mount_point == "/"
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|p| m.mount_point == *p || m.mount_point.starts_with(&format!("{p}/")));
        assert!(ok, "unexpected mount {:?} inside\n{out}", m.mount_point);
    }
}

#[test]
fn tmpfs_mounts_are_writable_under_a_read_only_root() {
    let Some(t) = Env::new("tmpfs_writable") else {
        return;
    };
    let out = t.run_sh(
        "echo shm > /dev/shm/f && cat /dev/shm/f; echo dev > /dev/f && cat /dev/f; \
         echo x > /tmp/f; echo tmp=$?",
        |_| {},
    );
    out.ok();
    assert_eq!(out.stdout, "shm\ndev\ntmp=1\n", "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
}

#[test]
fn root_readonly_follows_the_config() {
    let Some(t) = Env::new("root_readonly") else {
        return;
    };
    let rootfs = crate::common::shared_rootfs();
    for readonly in [true, false] {
        let probe = format!("probe-{}-{readonly}", std::process::id());
        let script = format!("touch /{probe}; echo rc=$?; cat /proc/self/mountinfo");
        let out = t.run_sh(&script, |c| c["root"]["readonly"] = json!(readonly));
        out.ok();
        let on_host = rootfs.join(&probe);
        let written = on_host.exists();
        let _ = fs::remove_file(&on_host);
        let root = find(&parse_mountinfo(&out.stdout), "/").cloned();
        let root = root.unwrap_or_else(|| panic!("no / in mountinfo\n{out}"));
        if readonly {
            assert!(
                out.stdout.starts_with("rc=1\n"),
                "touch / succeeded on a read-only root\n{out}"
            );
            assert!(out.stderr.contains("Read-only file system"), "{out}");
            assert!(!written, "a file appeared in the rootfs");
            assert!(
                root.options.iter().any(|o| o == "ro"),
                "/ not ro: {:?}",
                root.options
            );
        } else {
            assert!(
                out.stdout.starts_with("rc=0\n"),
                "touch / failed on a writable root\n{out}"
            );
            assert!(
                written,
                "the file written to / is not in the rootfs on the host"
            );
            assert!(
                root.options.iter().any(|o| o == "rw"),
                "/ not rw: {:?}",
                root.options
            );
        }
    }
}

#[test]
fn default_devices_exist() {
    let Some(t) = Env::new("devices") else { return };
    // (path, major, minor)
    let table = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let paths: Vec<&str> = table.iter().map(|(p, _, _)| *p).collect();
    let script = format!(
        "for d in {}; do echo \"$d|$(stat -c '%F|%t:%T|%a' $d)\"; done; \
         echo hello > /dev/null && echo null-ok; head -c 3 /dev/zero | od -An -tx1; \
         echo x > /dev/full; echo full=$?",
        paths.join(" ")
    );
    let out = t.run_sh(&script, |_| {});
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (i, (path, major, minor)) in table.iter().enumerate() {
        let want = format!("{path}|character special file|{major:x}:{minor:x}|666");
        assert_eq!(lines[i], want, "{out}");
    }
    let rest = &lines[table.len()..];
    assert_eq!(rest[0], "null-ok", "{out}");
    assert_eq!(
        rest[1].split_whitespace().collect::<Vec<_>>(),
        ["00", "00", "00"],
        "{out}"
    );
    assert_ne!(rest[2], "full=0", "writing /dev/full succeeded\n{out}");
    assert!(out.stderr.contains("No space left on device"), "{out}");
}

#[test]
fn dev_symlinks_exist() {
    let Some(t) = Env::new("dev_symlinks") else {
        return;
    };
    // (link, target)
    let table = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let script: String = table
        .iter()
        .map(|(l, _)| format!("echo \"{l}=$(readlink {l})\"; "))
        .collect();
    let out = t.run_sh(&format!("{script} echo via-stdout >> /dev/stdout"), |_| {});
    out.ok();
    for (link, target) in table {
        assert!(
            out.stdout.contains(&format!("{link}={target}\n")),
            "{link}\n{out}"
        );
    }
    assert!(out.stdout.contains("via-stdout"), "{out}");
}

const MASKED_FIXTURES: [&str; 2] = ["/opt/masked-file", "/opt/masked-dir"];

/// Script printing, for each path: `path|dir|N entries`, `path|type|maj:min|bytes`, or
/// `path|absent`.
fn describe_paths(paths: &[&str]) -> String {
    format!(
        "for p in {}; do \
           if [ -d $p ]; then echo \"$p|dir|$(ls -A $p | wc -l)\"; \
           elif [ -e $p ]; then echo \"$p|$(stat -c '%F|%t:%T' $p)|$(cat $p | wc -c)\"; \
           else echo \"$p|absent\"; fi; \
         done",
        paths.join(" ")
    )
}

fn line_for<'a>(stdout: &'a str, path: &str) -> &'a str {
    let prefix = format!("{path}|");
    stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or("(no line)")
}

#[test]
fn masked_paths_are_hidden() {
    let Some(t) = Env::new("masked_paths") else {
        return;
    };
    let defaults: Vec<String> =
        serde_json::from_value(t.bundle(|_| {}).config()["linux"]["maskedPaths"].clone()).unwrap();
    assert!(
        defaults.iter().any(|p| p == "/proc/kcore"),
        "berth spec masks /proc/kcore"
    );
    let mut all: Vec<&str> = defaults.iter().map(String::as_str).collect();
    all.extend(MASKED_FIXTURES);
    let script = format!(
        "{}; touch /opt/masked-dir/new; echo touch=$?",
        describe_paths(&all)
    );
    let edit = |c: &mut Value| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["maskedPaths"] = json!(all);
    };
    let out = t.run_sh(&script, edit);
    out.ok();

    let mut checked = 0;
    for p in &all {
        let line = line_for(&out.stdout, p);
        let on_host = if p.starts_with("/opt/") {
            crate::common::shared_rootfs().join(&p[1..])
        } else {
            Path::new(p).to_path_buf()
        };
        if !on_host.exists() {
            // Absent on this kernel (e.g. /proc/kcore without CONFIG_PROC_KCORE).
            assert_eq!(line, format!("{p}|absent"), "{out}");
            continue;
        }
        checked += 1;
        if on_host.is_dir() {
            assert_eq!(
                line,
                format!("{p}|dir|0"),
                "masked directory not empty\n{out}"
            );
        } else {
            assert_eq!(
                line,
                format!("{p}|character special file|1:3|0"),
                "masked file not /dev/null\n{out}"
            );
        }
    }
    assert!(
        checked >= 3,
        "too few masked paths exist on this host to check"
    );
    assert!(
        out.stdout.contains("touch=1"),
        "a masked directory is writable\n{out}"
    );
    assert!(
        !crate::common::shared_rootfs()
            .join("opt/masked-dir/new")
            .exists()
    );

    // Control: unmasked, the fixtures and /sys/firmware show their content.
    let paths = ["/opt/masked-file", "/opt/masked-dir", "/sys/firmware"];
    let out = t.run_sh(&describe_paths(&paths), |c| {
        c["linux"]["maskedPaths"] = json!([])
    });
    out.ok();
    assert_eq!(
        line_for(&out.stdout, "/opt/masked-file"),
        "/opt/masked-file|regular file|0:0|8",
        "{out}"
    );
    assert_eq!(
        line_for(&out.stdout, "/opt/masked-dir"),
        "/opt/masked-dir|dir|1",
        "{out}"
    );
    let host_fw = fs::read_dir("/sys/firmware")
        .map(|d| d.count())
        .unwrap_or(0);
    if host_fw > 0 {
        assert_eq!(
            line_for(&out.stdout, "/sys/firmware"),
            format!("/sys/firmware|dir|{host_fw}"),
            "{out}"
        );
    }
}

#[test]
fn readonly_paths_refuse_writes() {
    let Some(t) = Env::new("readonly_paths") else {
        return;
    };
    let probe = format!("/opt/rw-probe-{}", std::process::id());
    let script = format!(
        "echo changed > /proc/sys/kernel/hostname; echo sys=$?; hostname; \
         touch /opt/rodir/f; echo rodir=$?; touch {probe}; echo rw=$?; rm -f {probe}; \
         cat /proc/self/mountinfo"
    );
    let out = t.run_sh(&script, |c| {
        c["root"]["readonly"] = json!(false);
        c["hostname"] = json!("before");
        c["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/opt/rodir"));
    });
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_ne!(lines[0], "sys=0", "/proc/sys accepted a write\n{out}");
    assert_eq!(lines[1], "before", "{out}");
    assert_ne!(
        lines[2], "rodir=0",
        "a read-only path accepted a write\n{out}"
    );
    assert_eq!(
        lines[3], "rw=0",
        "the rest of the root must stay writable\n{out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    let mounts = parse_mountinfo(&out.stdout);
    for p in ["/proc/sys", "/opt/rodir"] {
        let m = find(&mounts, p).unwrap_or_else(|| panic!("{p} is not a mount\n{out}"));
        assert!(
            m.options.iter().any(|o| o == "ro"),
            "{p} not ro: {:?}",
            m.options
        );
    }

    // Control: without readonlyPaths the same write to /proc/sys works (in the container's
    // own uts namespace), so the failure above is the read-only mount's doing.
    let out = t.run_sh("echo changed > /proc/sys/kernel/hostname; hostname", |c| {
        c["hostname"] = json!("before");
        c["linux"]["readonlyPaths"] = json!([]);
    });
    out.ok();
    assert_eq!(out.stdout, "changed\n", "{out}");
}

#[test]
fn bind_mounts_share_host_directories() {
    let Some(t) = Env::new("bind_mounts") else {
        return;
    };
    let rw = t.dir.join("rw-src");
    let ro = t.dir.join("ro-src");
    let file = t.dir.join("host-file");
    fs::create_dir_all(&rw).unwrap();
    fs::create_dir_all(&ro).unwrap();
    fs::write(rw.join("from-host"), "rw-host\n").unwrap();
    fs::write(ro.join("from-host"), "ro-host\n").unwrap();
    fs::write(&file, "file-host\n").unwrap();
    let script = "cat /mnt/rw/from-host; echo inside > /mnt/rw/from-container; echo rw=$?; \
                  cat /mnt/ro/from-host; echo x > /mnt/ro/nope; echo ro=$?; \
                  cat /etc/host-file; echo y > /etc/host-file; echo file=$?";
    let out = t.run_sh(script, |c| {
        add_mount(
            c,
            json!({ "destination": "/mnt/rw", "type": "bind",
                             "source": rw, "options": ["rbind", "rw"] }),
        );
        add_mount(
            c,
            json!({ "destination": "/mnt/ro", "type": "none",
                             "source": ro, "options": ["rbind", "ro"] }),
        );
        add_mount(
            c,
            json!({ "destination": "/etc/host-file", "type": "bind",
                             "source": file, "options": ["bind", "ro"] }),
        );
    });
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["rw-host", "rw=0", "ro-host"], "{out}");
    assert_ne!(lines[3], "ro=0", "a ro bind accepted a write\n{out}");
    assert_eq!(lines[4], "file-host", "{out}");
    assert_ne!(lines[5], "file=0", "a ro file bind accepted a write\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert_eq!(
        fs::read_to_string(rw.join("from-container")).unwrap(),
        "inside\n"
    );
    assert!(
        !ro.join("nope").exists(),
        "a write through the ro bind reached the host"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "file-host\n");
}

#[test]
fn mount_destinations_stay_inside_the_root() {
    let Some(t) = Env::new("mount_escape") else {
        return;
    };
    let outside = t.dir.join("outside");
    let src = t.dir.join("src");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("marker"), "marker\n").unwrap();
    let outside_str = outside.to_str().unwrap().to_string();
    let outside_rel = outside_str.trim_start_matches('/').to_string();
    let ups = "../".repeat(30);
    // (link in the rootfs, its target, the mount destination through it, inside path)
    let table = [
        (
            "abs",
            format!("{outside_str}/abs-made"),
            "/abs/sub",
            format!("{outside_str}/abs-made/sub"),
        ),
        (
            "rel",
            format!("{ups}{outside_rel}/rel-made"),
            "/rel/sub",
            format!("{outside_str}/rel-made/sub"),
        ),
        (
            "dir",
            format!("{ups}{outside_rel}"),
            "/dir/in-dir",
            format!("{outside_str}/in-dir"),
        ),
    ];
    let dotdot_dest = format!("/{ups}{outside_rel}/dotdot");
    let b = t.bundle_own_rootfs(
        |rootfs| {
            for (link, target, _, _) in &table {
                symlink(target, rootfs.join(link)).unwrap();
            }
        },
        |c| {
            for (_, _, dest, _) in &table {
                add_mount(
                    c,
                    json!({ "destination": dest, "type": "bind",
                                     "source": src, "options": ["rbind", "ro"] }),
                );
            }
            add_mount(
                c,
                json!({ "destination": dotdot_dest, "type": "tmpfs",
                                 "source": "tmpfs", "options": ["size=64k"] }),
            );
            c["process"]["args"] = json!([
                "sh",
                "-c",
                "cat /abs/sub/marker /rel/sub/marker /dir/in-dir/marker; cat /proc/self/mountinfo"
            ]);
        },
    );
    // Resolving the relative links walks "..", which berth does not yet retry when the
    // kernel answers EAGAIN because of mounts or renames elsewhere on the host (see
    // dotdot_in_mount_destinations_survives_concurrent_renames). Retry that one error
    // here, so this test judges only where the mounts land.
    let mut out = t.run(&b, &t.id("escape"));
    for _ in 0..10 {
        if !out.stderr.contains("Try again") {
            break;
        }
        out = t.run(&b, &t.id("escape"));
    }
    out.ok();

    // Nothing was made or mounted in the host directory the links point to.
    let left: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "mount set-up escaped the root into {outside:?}: {left:?}\n{out}"
    );
    // Inside, each mount is where the link leads within the root.
    assert!(out.stdout.starts_with("marker\nmarker\nmarker\n"), "{out}");
    let mounts = parse_mountinfo(&out.stdout);
    let inside_points = table
        .iter()
        .map(|(_, _, _, inside)| inside.clone())
        .chain([format!("{outside_str}/dotdot")]);
    for point in inside_points {
        assert!(
            find(&mounts, &point).is_some(),
            "no mount at {point} inside\n{out}"
        );
        let on_host = b.dir.join("rootfs").join(point.trim_start_matches('/'));
        assert!(
            on_host.is_dir(),
            "{on_host:?} was not made inside the rootfs"
        );
    }
}

#[test]
fn dotdot_in_mount_destinations_survives_concurrent_renames() {
    let Some(t) = Env::new("dotdot_rename_race") else {
        return;
    };
    // openat2(RESOLVE_IN_ROOT) fails with EAGAIN when a rename or a mount happens anywhere
    // on the host while it resolves "..": the kernel cannot prove ".." stayed inside the
    // root and asks the caller to retry. Container set-up must retry, not fail, since
    // other containers mount and rename all the time on a busy host.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, a, b) = (stop.clone(), t.dir.join("churn-a"), t.dir.join("churn-b"));
        fs::write(&a, "").unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::rename(&a, &b);
                let _ = fs::rename(&b, &a);
            }
        })
    };
    let mut failures = Vec::new();
    for round in 0..20 {
        let out = t.run_sh("grep -c ' /opt/race-mnt ' /proc/self/mountinfo", |c| {
            add_mount(
                c,
                json!({ "destination": "/opt/masked-dir/../rodir/../../opt/race-mnt",
                                 "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"] }),
            );
        });
        if out.code() != 0 || out.stdout != "1\n" {
            failures.push(format!("round {round}:\n{out}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of 20 runs failed; first:\n{}",
        failures.len(),
        failures[0]
    );
}
