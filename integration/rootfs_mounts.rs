//! Every mount type and option of `mounts[]`, checked from inside the container (its
//! mountinfo, and what reads, writes and execs do) and from the host (where writes land).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use serde_json::json;

use crate::common::{Env, add_mount, drop_namespace};
use crate::rootfs_support::{Watch, mount, mountinfo, must, tag};

#[test]
fn recursive_attributes_reach_every_submount() {
    let Some(t) = Env::new("rec_attrs") else {
        return;
    };
    // The host's /dev has mounts below it (pts, shm, …): an rbind of it is a tree.
    let host = mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let mut subs: Vec<String> = host
        .iter()
        .filter_map(|m| m.point.strip_prefix("/dev/").map(str::to_string))
        .filter(|s| !s.contains('/'))
        .collect();
    subs.sort();
    subs.dedup();
    assert!(
        !subs.is_empty(),
        "the host has no mount below /dev to test with"
    );
    let shm_probe = format!("berth-rro-probe-{}", std::process::id());
    let script = format!("touch /mnt/rec/shm/{shm_probe}; echo shm=$?; cat /proc/self/mountinfo");
    let out = t.run_sh(&script, |c| {
        add_mount(
            c,
            mount(
                "/mnt/rec",
                "bind",
                "/dev",
                &["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"],
            ),
        );
        add_mount(
            c,
            mount("/mnt/top", "bind", "/dev", &["rbind", "ro", "nosuid"]),
        );
    });
    out.ok();
    let m = mountinfo(&out.stdout);
    for p in std::iter::once(String::new()).chain(subs.iter().map(|s| format!("/{s}"))) {
        let rec = must(&m, &format!("/mnt/rec{p}"), &out);
        for o in ["ro", "nosuid", "noexec", "noatime"] {
            assert!(rec.has(o), "/mnt/rec{p} lacks {o}: {:?}\n{out}", rec.opts);
        }
    }
    // Plain ro and nosuid: the top mount only.
    let top = must(&m, "/mnt/top", &out);
    assert!(top.has("ro") && top.has("nosuid"), "{:?}\n{out}", top.opts);
    let rw_below = subs
        .iter()
        .filter(|s| {
            host.iter()
                .any(|h| h.point == format!("/dev/{s}") && h.has("rw"))
        })
        .filter(|s| must(&m, &format!("/mnt/top/{s}"), &out).has("rw"))
        .count();
    assert!(rw_below > 0, "plain ro reached the submounts\n{out}");
    if subs.iter().any(|s| s == "shm") {
        assert_ne!(
            tag(&out.stdout, "shm=", &out),
            "0",
            "rro let a write into a submount\n{out}"
        );
        assert!(!Path::new("/dev/shm").join(&shm_probe).exists());
    }
}

/// (destination, type, options, options that must show, options that must not)
type AttrCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn access_time_and_symlink_attributes() {
    let Some(t) = Env::new("atime_attrs") else {
        return;
    };
    let src = t.dir.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), "content\n").unwrap();
    symlink("file", src.join("link")).unwrap();
    let table: &[AttrCase] = &[
        (
            "/mnt/a",
            "bind",
            &["rbind", "rnoatime"],
            &["noatime"],
            &["relatime"],
        ),
        (
            "/mnt/b",
            "bind",
            &["rbind", "rstrictatime"],
            &[],
            &["noatime", "relatime"],
        ),
        (
            "/mnt/c",
            "bind",
            &["rbind", "rnoatime", "rrelatime"],
            &["relatime"],
            &["noatime"],
        ),
        (
            "/mnt/d",
            "bind",
            &["rbind", "rnodiratime"],
            &["nodiratime"],
            &[],
        ),
        (
            "/mnt/e",
            "bind",
            &["rbind", "rnosymfollow"],
            &["nosymfollow"],
            &[],
        ),
        (
            "/mnt/f",
            "bind",
            &["bind", "nosymfollow"],
            &["nosymfollow"],
            &[],
        ),
        (
            "/mnt/g",
            "bind",
            &["bind", "noatime"],
            &["noatime"],
            &["relatime"],
        ),
        (
            "/mnt/h",
            "bind",
            &["bind", "strictatime"],
            &[],
            &["noatime", "relatime"],
        ),
        ("/mnt/i", "bind", &["rbind", "rro", "rrw"], &["rw"], &["ro"]),
        (
            "/mnt/j",
            "bind",
            &[
                "rbind", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
            ],
            &[],
            &["nosuid", "nodev", "noexec"],
        ),
        (
            "/mnt/k",
            "bind",
            &["rbind", "rnosymfollow", "rsymfollow"],
            &[],
            &["nosymfollow"],
        ),
        (
            "/mnt/l",
            "bind",
            &["rbind", "rnodiratime", "rdiratime"],
            &[],
            &["nodiratime"],
        ),
        (
            "/mnt/m",
            "bind",
            &["rbind", "rnoatime", "ratime"],
            &["relatime"],
            &["noatime"],
        ),
        (
            "/mnt/t",
            "tmpfs",
            &["nosymfollow", "noatime", "nodiratime"],
            &["nosymfollow", "noatime", "nodiratime"],
            &[],
        ),
        (
            "/mnt/u",
            "tmpfs",
            &["rro", "rnosuid"],
            &["ro", "nosuid"],
            &[],
        ),
    ];
    let script = "cat /mnt/a/link; echo follow=$?; cat /mnt/e/link; echo nofollow-rec=$?; \
                  cat /mnt/f/link; echo nofollow=$?; cat /proc/self/mountinfo";
    let out = t.run_sh(script, |c| {
        for (dest, typ, opts, _, _) in table {
            let source = if *typ == "bind" {
                src.clone()
            } else {
                "tmpfs".into()
            };
            add_mount(c, mount(dest, typ, &source, opts));
        }
    });
    out.ok();
    assert_eq!(tag(&out.stdout, "follow=", &out), "0", "{out}");
    assert_ne!(
        tag(&out.stdout, "nofollow-rec=", &out),
        "0",
        "rnosymfollow followed a link\n{out}"
    );
    assert_ne!(
        tag(&out.stdout, "nofollow=", &out),
        "0",
        "nosymfollow followed a link\n{out}"
    );
    let m = mountinfo(&out.stdout);
    for (dest, _, opts, want, not) in table {
        let got = must(&m, dest, &out);
        for w in *want {
            assert!(
                got.has(w),
                "{dest} {opts:?}: lacks {w}: {:?}\n{out}",
                got.opts
            );
        }
        for n in *not {
            assert!(
                !got.has(n),
                "{dest} {opts:?}: has {n}: {:?}\n{out}",
                got.opts
            );
        }
    }
}

#[test]
fn bind_options_hold_from_the_start() {
    let Some(t) = Env::new("bind_opts") else {
        return;
    };
    let src = t.dir.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let script = "/mnt/exec/run.sh; /mnt/noexec/run.sh; echo noexec=$?; \
                  touch /mnt/ro/new; echo ro=$?; touch /mnt/exec/new; echo rw=$?; \
                  cat /proc/self/mountinfo";
    let out = t.run_sh(script, |c| {
        add_mount(c, mount("/mnt/exec", "bind", &src, &["bind", "rw", "exec"]));
        add_mount(
            c,
            mount(
                "/mnt/noexec",
                "none",
                &src,
                &["rbind", "noexec", "nosuid", "nodev"],
            ),
        );
        add_mount(c, mount("/mnt/ro", "bind", &src, &["bind", "ro"]));
    });
    out.ok();
    assert!(out.stdout.starts_with("ran\n"), "{out}");
    assert_ne!(tag(&out.stdout, "noexec=", &out), "0", "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    assert_ne!(tag(&out.stdout, "ro=", &out), "0", "{out}");
    assert_eq!(tag(&out.stdout, "rw=", &out), "0", "{out}");
    assert!(
        src.join("new").exists(),
        "a write through the rw bind did not reach the host"
    );
    let m = mountinfo(&out.stdout);
    let ne = must(&m, "/mnt/noexec", &out);
    assert!(
        ne.has("noexec") && ne.has("nosuid") && ne.has("nodev"),
        "{:?}",
        ne.opts
    );
    assert!(must(&m, "/mnt/ro", &out).has("ro"));
}

#[test]
fn tmpfs_options_reach_the_filesystem() {
    let Some(t) = Env::new("tmpfs_opts") else {
        return;
    };
    let script = "stat -c '%a:%u:%g' /mnt/t; \
                  dd if=/dev/zero of=/mnt/t/big bs=1k count=200 2>/dev/null; echo fill=$?; \
                  cat /proc/self/mountinfo";
    let out = t.run_sh(script, |c| {
        add_mount(
            c,
            mount(
                "/mnt/t",
                "tmpfs",
                "mytmp",
                &[
                    "size=64k",
                    "mode=750",
                    "uid=1",
                    "gid=2",
                    "nr_inodes=100",
                    "nosuid",
                ],
            ),
        );
    });
    out.ok();
    assert!(out.stdout.starts_with("750:1:2\n"), "{out}");
    assert_ne!(
        tag(&out.stdout, "fill=", &out),
        "0",
        "size=64k did not hold\n{out}"
    );
    let m = mountinfo(&out.stdout);
    let tm = must(&m, "/mnt/t", &out);
    assert_eq!(
        (tm.fstype.as_str(), tm.source.as_str()),
        ("tmpfs", "mytmp"),
        "{out}"
    );
    for o in ["size=64k", "mode=750", "uid=1", "gid=2", "nr_inodes=100"] {
        assert!(tm.sb_has(o), "lacks {o}: {:?}\n{out}", tm.sb);
    }
    assert!(tm.has("nosuid"));

    // An option the filesystem does not know is named in the error.
    let b = t.bundle(|c| add_mount(c, mount("/mnt/t", "tmpfs", "tmpfs", &["bogus-option=1"])));
    let id = t.id("bogus");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.fails_with("config.json mounts[7] (/mnt/t)");
    out.fails_with("bogus-option");
}

#[test]
fn sysfs_is_read_only_without_a_network_namespace() {
    let Some(t) = Env::new("sysfs_ro") else {
        return;
    };
    let rw_sysfs = |c: &mut serde_json::Value| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "sysfs" {
                m["options"] = json!(["nosuid", "noexec", "nodev"]);
            }
        }
    };
    let out = t.run_sh("cat /proc/self/mountinfo", |c| {
        rw_sysfs(c);
        drop_namespace(c, "network");
    });
    out.ok();
    let m = mountinfo(&out.stdout);
    assert!(
        must(&m, "/sys", &out).has("ro"),
        "sysfs writable without a netns\n{out}"
    );
    let out = t.run_sh("cat /proc/self/mountinfo", rw_sysfs);
    out.ok();
    let m = mountinfo(&out.stdout);
    assert!(
        must(&m, "/sys", &out).has("rw"),
        "with its own netns, sysfs is as asked\n{out}"
    );
}

#[test]
fn other_filesystem_types_get_their_data() {
    let Some(t) = Env::new("other_fs") else {
        return;
    };
    let script = "stat -c '%a' /mnt/ram; cat /proc/self/mountinfo";
    let out = t.run_sh(script, |c| {
        add_mount(
            c,
            mount("/mnt/ram", "ramfs", "myram", &["mode=700", "nodev"]),
        );
        add_mount(c, mount("/mnt/mq", "mqueue", "mqueue", &["nosuid"]));
        add_mount(
            c,
            mount(
                "/mnt/pts",
                "devpts",
                "devpts",
                &["newinstance", "ptmxmode=0600", "mode=0600"],
            ),
        );
    });
    out.ok();
    assert!(out.stdout.starts_with("700\n"), "{out}");
    let m = mountinfo(&out.stdout);
    let ram = must(&m, "/mnt/ram", &out);
    assert_eq!(
        (ram.fstype.as_str(), ram.source.as_str()),
        ("ramfs", "myram")
    );
    assert!(ram.sb_has("mode=700") && ram.has("nodev"), "{ram:?}");
    assert_eq!(must(&m, "/mnt/mq", &out).fstype, "mqueue");
    let pts = must(&m, "/mnt/pts", &out);
    assert!(
        pts.fstype == "devpts" && pts.sb_has("ptmxmode=600"),
        "{pts:?}"
    );
}

#[test]
fn mount_points_take_the_kind_of_their_source() {
    let Some(t) = Env::new("mount_point_kind") else {
        return;
    };
    let dir = t.dir.join("srcdir");
    let file = t.dir.join("srcfile");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("in"), "in\n").unwrap();
    fs::write(&file, "file\n").unwrap();
    let script = "for p in /mnt/new/file /mnt/new/dir /mnt/new/null; do echo \"$p|$(stat -c %F $p)\"; done; \
                  cat /mnt/new/file /mnt/new/dir/in";
    let out = t.run_sh(script, |c| {
        add_mount(c, mount("/mnt/new/file", "bind", &file, &["bind", "ro"]));
        add_mount(c, mount("/mnt/new/dir", "bind", &dir, &["rbind", "ro"]));
        add_mount(c, mount("/mnt/new/null", "bind", "/dev/null", &["bind"]));
    });
    out.ok();
    for w in [
        "/mnt/new/file|regular file",
        "/mnt/new/dir|directory",
        "/mnt/new/null|character special file",
        "file",
        "in",
    ] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }

    // A source of the wrong kind for an existing destination is refused, by name.
    let rootfs = crate::common::shared_rootfs();
    let watch = Watch::new(&[&rootfs.join("opt/rodir"), &rootfs.join("etc/passwd")]);
    let cases = [
        (
            mount("/opt/rodir", "bind", &file, &["bind"]),
            "mount point /opt/rodir is a directory in the rootfs",
        ),
        (
            mount("/etc/passwd", "bind", &dir, &["rbind"]),
            "mount point /etc/passwd is a regular file in the rootfs",
        ),
        (
            mount("/etc/passwd", "tmpfs", "tmpfs", &[]),
            "can only be mounted on a directory",
        ),
    ];
    for (m, phrase) in cases {
        let b = t.bundle(|c| add_mount(c, m.clone()));
        let id = t.id("kind");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.fails_with("config.json mounts[7]");
        out.fails_with(phrase);
    }
    watch.check(&"wrong-kind mounts");
}

#[test]
fn linux_devices_have_their_type_numbers_mode_and_owner() {
    let Some(t) = Env::new("linux_devices") else {
        return;
    };
    let script = "for d in /dev/test-c /dev/test-b /dev/sub/test-p; do \
                    echo \"$d|$(stat -c '%F|%t:%T|%a|%u:%g' $d)\"; done";
    let out = t.run_sh(script, |c| {
        c["linux"]["devices"] = json!([
            { "path": "/dev/test-c", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 1, "gid": 2 },
            { "path": "/dev/test-b", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 6 },
            { "path": "/dev/sub/test-p", "type": "p", "fileMode": 0o620 }
        ]);
    });
    out.ok();
    for w in [
        "/dev/test-c|character special file|1:5|640|1:2",
        "/dev/test-b|block special file|7:c8|600|0:6",
        "/dev/sub/test-p|fifo|0:0|620|0:0",
    ] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
}

#[test]
fn masked_paths_read_empty_and_keep_writes_out() {
    let Some(t) = Env::new("masked_writes") else {
        return;
    };
    let rootfs = crate::common::shared_rootfs();
    let watch = Watch::new(&[
        &rootfs.join("opt/masked-file"),
        &rootfs.join("opt/masked-dir"),
    ]);
    let script = "cat /opt/masked-file | wc -c; echo overwrite > /opt/masked-file; \
                  cat /opt/masked-file | wc -c; touch /opt/masked-dir/new; echo dir=$?; \
                  cat /proc/self/mountinfo";
    let out = t.run_sh(script, |c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["maskedPaths"] = json!(["/opt/masked-file", "/opt/masked-dir"]);
    });
    out.ok();
    assert!(out.stdout.starts_with("0\n0\n"), "{out}");
    assert_ne!(tag(&out.stdout, "dir=", &out), "0", "{out}");
    let m = mountinfo(&out.stdout);
    assert!(must(&m, "/opt/masked-dir", &out).has("ro"));
    assert_eq!(must(&m, "/opt/masked-file", &out).root, "/null");
    watch.check(&out);
}

#[test]
fn remount_changes_what_is_mounted() {
    let Some(t) = Env::new("remount") else {
        return;
    };
    let out = t.run_sh(
        "touch /mnt/t/x; echo rc=$?; cat /proc/self/mountinfo",
        |c| {
            add_mount(c, mount("/mnt/t", "tmpfs", "tmpfs", &["size=64k"]));
            add_mount(
                c,
                mount("/mnt/t", "tmpfs", "tmpfs", &["remount", "ro", "size=128k"]),
            );
        },
    );
    out.ok();
    assert_ne!(tag(&out.stdout, "rc=", &out), "0", "{out}");
    let m = mountinfo(&out.stdout);
    let tm = must(&m, "/mnt/t", &out);
    assert!(tm.has("ro") && tm.sb_has("size=128k"), "{tm:?}\n{out}");
    assert_eq!(m.iter().filter(|x| x.point == "/mnt/t").count(), 1, "{out}");
}

#[test]
fn mount_label_is_skipped_without_selinux() {
    let Some(t) = Env::new("mount_label") else {
        return;
    };
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipped: SELinux is enabled here");
        return;
    }
    let b = t.bundle(|c| {
        c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
        c["process"]["args"] = json!(["sh", "-c", "grep -c context= /proc/self/mountinfo"]);
    });
    let id = t.id("label");
    let out = t.berth(&["--debug", "run", "--bundle", b.path(), &id]);
    assert_eq!(out.stdout.trim(), "0", "{out}");
    assert!(
        out.stderr.contains("linux.mountLabel") && out.stderr.contains("SELinux is not enabled"),
        "{out}"
    );
}

#[test]
fn features_list_the_mount_options_implemented() {
    let Some(t) = Env::new("features_mounts") else {
        return;
    };
    let out = t.berth(&["features"]);
    out.ok();
    let f: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for w in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "ratime",
        "rnoatime",
        "rstrictatime",
        "rnosymfollow",
        "rsymfollow",
        "nosymfollow",
        "tmpcopyup",
        "idmap",
        "ridmap",
        "rbind",
        "rshared",
        "runbindable",
    ] {
        assert!(opts.contains(&w), "features lacks {w}: {opts:?}");
    }
    assert_eq!(
        f["linux"]["mountExtensions"]["idmap"]["enabled"], true,
        "{out}"
    );
}

#[test]
fn cgroup_mount_shows_only_the_containers_cgroup() {
    let Some(t) = Env::new("cgroup_mount") else {
        return;
    };
    for with_ns in [true, false] {
        let out = t.run_sh("cat /proc/self/mountinfo", |c| {
            if !with_ns {
                drop_namespace(c, "cgroup");
            }
        });
        out.ok();
        let m = mountinfo(&out.stdout);
        let cg: Vec<_> = m
            .iter()
            .filter(|x| x.point.starts_with("/sys/fs/cgroup/"))
            .collect();
        assert!(
            !cg.is_empty() || must(&m, "/sys/fs/cgroup", &out).fstype == "cgroup2",
            "{out}"
        );
        for x in &cg {
            assert!(
                x.has("ro") && x.has("nosuid") && x.has("nodev") && x.has("noexec"),
                "{x:?}"
            );
            if with_ns {
                // In its cgroup namespace, the container's cgroup is the root.
                assert_eq!(x.root, "/", "{x:?}\n{out}");
            } else {
                assert_ne!(
                    x.root, "/",
                    "the host's whole hierarchy is bound: {x:?}\n{out}"
                );
            }
        }
    }
}

#[test]
fn file_mount_point_made_fresh_is_a_file_owned_by_the_image() {
    let Some(t) = Env::new("file_mount_point") else {
        return;
    };
    let file = t.dir.join("hosts");
    fs::write(&file, "127.0.0.1 x\n").unwrap();
    let b = t.bundle_own_rootfs(
        |_| {},
        |c| {
            add_mount(c, mount("/etc/new/hosts", "bind", &file, &["bind", "ro"]));
            c["process"]["args"] = json!(["cat", "/etc/new/hosts"]);
        },
    );
    let out = t.run(&b, &t.id("fmp"));
    out.ok();
    assert_eq!(out.stdout, "127.0.0.1 x\n", "{out}");
    // The mount point was made in the rootfs, as an empty file.
    let made = b.dir.join("rootfs/etc/new/hosts");
    assert!(made.is_file() && fs::read(&made).unwrap().is_empty());
}
