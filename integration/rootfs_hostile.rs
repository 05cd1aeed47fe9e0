//! Hostile images: an image may make `/dev`, `/dev/null`, `/dev/pts`, `/dev/console`, a
//! device path, `/proc`, `/sys`, a masked path or a mount destination a symlink to a host
//! path, or the wrong kind of file. Whatever it does, no host file is created, removed,
//! truncated, followed or mounted over, and the host's mount table does not change.
//!
//! Each test watches the host paths the image aims at (they must be exactly as before:
//! entries, contents, times) and runs the container inside `leaves_nothing`.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Env, add_mount, drop_namespace};
use crate::rootfs_support::{Watch, drop_mounts, mount, mountinfo, must};

const DEV_MOUNTS: &[&str] = &["/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"];

/// A host directory with one file in it, for the image to aim at.
fn host_target(t: &Env, name: &str) -> (PathBuf, PathBuf) {
    let dir = t.dir.join(name);
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("precious");
    fs::write(&file, "precious host data\n").unwrap();
    (dir, file)
}

fn replace_with_symlink(path: &Path, target: &Path) {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path).unwrap();
    } else {
        let _ = fs::remove_file(path);
    }
    symlink(target, path).unwrap();
}

fn script(c: &mut Value, s: &str) {
    c["process"]["args"] = json!(["sh", "-c", s]);
}

#[test]
fn dev_a_symlink_to_a_host_directory() {
    let Some(t) = Env::new("hostile_dev") else {
        return;
    };
    let (host_dev, _) = host_target(&t, "host-dev");
    let watch = Watch::new(&[&host_dev]);
    // With the usual tmpfs on /dev, and with the image's own /dev.
    for own_dev in [false, true] {
        let b = t.bundle_own_rootfs(
            |r| replace_with_symlink(&r.join("dev"), &host_dev),
            |c| {
                if own_dev {
                    drop_mounts(c, DEV_MOUNTS);
                }
                script(
                    c,
                    "stat -c '%F|%t:%T' /dev/null /dev/zero; echo x > /dev/null && echo null-ok",
                );
            },
        );
        let id = t.id("dev");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.ok();
        assert_eq!(
            out.stdout, "character special file|1:3\ncharacter special file|1:5\nnull-ok\n",
            "own /dev: {own_dev}\n{out}"
        );
        watch.check(&out);
        if own_dev {
            // The nodes were made where the link leads inside the root.
            let inner = b
                .dir
                .join("rootfs")
                .join(host_dev.strip_prefix("/").unwrap());
            assert!(inner.join("null").exists(), "{inner:?}\n{out}");
        }
    }
}

#[test]
fn dev_null_a_symlink_to_a_host_file() {
    let Some(t) = Env::new("hostile_null") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-null");
    let watch = Watch::new(&[&dir]);
    for userns in [false, true] {
        let b = t.bundle_own_rootfs(
            |r| {
                replace_with_symlink(&r.join("dev/null"), &file);
                if userns {
                    // The container's root (host uid 100000) owns the image's /dev.
                    chown(r.join("dev"), Some(100000), Some(100000)).unwrap();
                    lchown(r.join("dev/null"), Some(100000), Some(100000)).unwrap();
                }
            },
            |c| {
                drop_mounts(c, DEV_MOUNTS);
                c["linux"]["maskedPaths"] = json!(["/opt/masked-file"]);
                if userns {
                    c["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({ "type": "user" }));
                    let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
                    c["linux"]["uidMappings"] = maps.clone();
                    c["linux"]["gidMappings"] = maps;
                }
                script(
                    c,
                    "stat -c '%F|%t:%T' /dev/null; echo overwrite > /dev/null; echo write=$?; \
                     cat /dev/null | wc -c; cat /opt/masked-file | wc -c; cat /proc/self/mountinfo",
                );
            },
        );
        let id = t.id("null");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.ok();
        assert!(
            out.stdout
                .starts_with("character special file|1:3\nwrite=0\n0\n0\n"),
            "userns {userns}\n{out}"
        );
        let m = mountinfo(&out.stdout);
        // Masking used the host's real /dev/null, never the image's.
        let masked = must(&m, "/opt/masked-file", &out);
        assert_eq!(
            (masked.root.as_str(), masked.fstype.as_str()),
            ("/null", "devtmpfs"),
            "{out}"
        );
        watch.check(&out);
    }

    // A /dev/null that is a directory in the image is refused, by name.
    let b = t.bundle_own_rootfs(
        |r| fs::create_dir_all(r.join("dev/null")).unwrap(),
        |c| drop_mounts(c, DEV_MOUNTS),
    );
    let id = t.id("nulldir");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.fails_with("/dev/null is a directory in the rootfs");
}

#[test]
fn dev_console_and_dev_pts_symlinks() {
    let Some(t) = Env::new("hostile_console") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-console");
    let pts_dir = t.dir.join("host-pts");
    fs::create_dir_all(&pts_dir).unwrap();
    let watch = Watch::new(&[&dir, &pts_dir]);
    for pts_link in [false, true] {
        let b = t.bundle_own_rootfs(
            |r| {
                if pts_link {
                    replace_with_symlink(&r.join("dev/pts"), &pts_dir);
                } else {
                    fs::create_dir_all(r.join("dev/pts")).unwrap();
                    // A /dev/pts/0 of the image, under where devpts is mounted.
                    symlink(&file, r.join("dev/pts/0")).unwrap();
                }
                replace_with_symlink(&r.join("dev/console"), &file);
            },
            |c| {
                drop_mounts(c, &["/dev", "/dev/shm", "/dev/mqueue"]);
                c["process"]["terminal"] = json!(true);
                script(
                    c,
                    "stat -c 'console=%F|%t' /dev/console; tty; echo hi > /dev/console",
                );
            },
        );
        let id = t.id("console");
        let inner = format!(
            "{} --root {} run --bundle {} {id}",
            crate::common::BERTH,
            t.root.display(),
            b.path()
        );
        let out = t.leaves_nothing(&id, || {
            std::process::Command::new("timeout")
                .args(["30", "script", "-qec", &inner, "/dev/null"])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("script (util-linux) runs")
        });
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(out.status.success(), "pts link {pts_link}\n{text}");
        // 0x88 = 136: a pty peer of the container's own devpts.
        assert!(
            text.contains("console=character special file|88\n"),
            "pts link {pts_link}\n{text}"
        );
        // With /dev/pts a link, the pty's name is where the link leads inside the root.
        let pty = if pts_link {
            format!("{}/0\n", pts_dir.display())
        } else {
            "/dev/pts/0\n".to_string()
        };
        assert!(text.contains(&pty) && text.contains("hi\n"), "{text}");
        watch.check(&text);
    }
}

#[test]
fn proc_or_sys_a_symlink_is_refused() {
    let Some(t) = Env::new("hostile_proc_sys") else {
        return;
    };
    let (host_dir, _) = host_target(&t, "host-procfs");
    let watch = Watch::new(&[&host_dir]);
    // (path in the image, link target, what the error names)
    let cases = [
        (
            "proc",
            host_dir.clone(),
            "proc is only mounted on a real directory",
        ),
        (
            "sys",
            host_dir.clone(),
            "sysfs is only mounted on a real directory",
        ),
        // A link that stays inside the root is refused too: /proc must be /proc.
        (
            "proc",
            PathBuf::from("etc"),
            "proc is only mounted on a real directory",
        ),
        (
            "sys",
            PathBuf::from("../../tmp"),
            "sysfs is only mounted on a real directory",
        ),
    ];
    for (name, target, phrase) in cases {
        let b = t.bundle_own_rootfs(|r| replace_with_symlink(&r.join(name), &target), |_| {});
        let id = t.id("procsys");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.fails_with(phrase);
        out.fails_with("symlink");
        watch.check(&out);
    }
    // /proc a file: refused too.
    let b = t.bundle_own_rootfs(
        |r| {
            fs::remove_dir_all(r.join("proc")).unwrap();
            fs::write(r.join("proc"), "").unwrap();
        },
        |_| {},
    );
    let id = t.id("procfile");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.fails_with("proc is only mounted on a real directory");
}

#[test]
fn device_paths_through_symlinks_stay_inside() {
    let Some(t) = Env::new("hostile_devices") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-devs");
    let watch = Watch::new(&[&dir]);
    let b = t.bundle_own_rootfs(
        |r| {
            symlink(&file, r.join("dev/evil")).unwrap();
            symlink(&dir, r.join("dev/sub")).unwrap();
        },
        |c| {
            drop_mounts(c, DEV_MOUNTS);
            c["linux"]["devices"] = json!([
                { "path": "/dev/evil", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600 },
                { "path": "/dev/sub/dev-in-link", "type": "c", "major": 1, "minor": 7 }
            ]);
            script(c, "stat -c '%n|%F|%t:%T' /dev/evil /dev/sub/dev-in-link");
        },
    );
    let id = t.id("devs");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.ok();
    assert_eq!(
        out.stdout,
        "/dev/evil|character special file|1:5\n/dev/sub/dev-in-link|character special file|1:7\n",
        "{out}"
    );
    watch.check(&out);
    let inner = b
        .dir
        .join("rootfs")
        .join(dir.strip_prefix("/").unwrap())
        .join("dev-in-link");
    assert!(inner.exists(), "the device was not made inside the root");
}

#[test]
fn masked_readonly_and_mount_paths_through_symlinks_stay_inside() {
    let Some(t) = Env::new("hostile_paths") else {
        return;
    };
    // Masks and read-only paths aim at one host directory, the mounts at another, so
    // what the mounts make inside the root does not give the masks something to hit.
    let (dir, file) = host_target(&t, "host-paths");
    let (mdir, mfile) = host_target(&t, "host-mount-targets");
    let src = t.dir.join("bind-src-file");
    fs::write(&src, "from the bind source\n").unwrap();
    let watch = Watch::new(&[&dir, &mdir]);
    let b = t.bundle_own_rootfs(
        |r| {
            symlink(&file, r.join("opt/mask-file-link")).unwrap();
            symlink(&dir, r.join("opt/mask-dir-link")).unwrap();
            symlink(&dir, r.join("opt/ro-link")).unwrap();
            symlink(&mfile, r.join("etc/bind-file-link")).unwrap();
            symlink("../../../../../../..", r.join("opt/up")).unwrap();
        },
        |c| {
            c["linux"]["maskedPaths"] = json!(["/opt/mask-file-link", "/opt/mask-dir-link"]);
            c["linux"]["readonlyPaths"] = json!(["/opt/ro-link"]);
            add_mount(
                c,
                mount("/etc/bind-file-link", "bind", &src, &["bind", "ro"]),
            );
            let dotdot = format!("/opt/up/{}", mdir.strip_prefix("/").unwrap().display());
            add_mount(
                c,
                mount(
                    &format!("{dotdot}/tmpfs-here"),
                    "tmpfs",
                    "tmpfs",
                    &["size=64k"],
                ),
            );
            script(c, "cat /etc/bind-file-link; cat /proc/self/mountinfo");
        },
    );
    let id = t.id("paths");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.ok();
    assert!(out.stdout.starts_with("from the bind source\n"), "{out}");
    watch.check(&out);
    // The bind landed on a file made where the link leads inside the root.
    let inner = b.dir.join("rootfs").join(mfile.strip_prefix("/").unwrap());
    assert!(inner.is_file(), "{inner:?}");
    let m = mountinfo(&out.stdout);
    let tmpfs_at = format!("{}/tmpfs-here", mdir.display());
    assert_eq!(must(&m, &tmpfs_at, &out).fstype, "tmpfs", "{out}");
    // The masks and the read-only path led nowhere inside the root: nothing was mounted.
    let inner_dir = dir.display().to_string();
    assert!(!m.iter().any(|x| x.point.starts_with(&inner_dir)), "{out}");
}

#[test]
fn symlinked_destinations_cannot_reach_the_host_mount_table_in_a_user_namespace() {
    let Some(t) = Env::new("hostile_userns") else {
        return;
    };
    // The same hostile /dev entries with the init in a user namespace, where device nodes
    // are bind mounts of the host's: each lands on a plain file made inside the root.
    let (dir, file) = host_target(&t, "host-userns");
    let watch = Watch::new(&[&dir]);
    let b = t.bundle_own_rootfs(
        |r| {
            for name in ["zero", "full", "tty"] {
                symlink(&file, r.join("dev").join(name)).unwrap();
                lchown(r.join("dev").join(name), Some(100000), Some(100000)).unwrap();
            }
            chown(r.join("dev"), Some(100000), Some(100000)).unwrap();
        },
        |c| {
            drop_mounts(c, DEV_MOUNTS);
            drop_namespace(c, "network");
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "user" }));
            let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
            c["linux"]["uidMappings"] = maps.clone();
            c["linux"]["gidMappings"] = maps;
            script(c, "for d in zero full tty; do stat -c '%n|%F|%t:%T' /dev/$d; done; awk '$5 == \"/sys\"' /proc/self/mountinfo | wc -l");
        },
    );
    let id = t.id("userns");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.ok();
    for w in [
        "/dev/zero|character special file|1:5",
        "/dev/full|character special file|1:7",
        "/dev/tty|character special file|5:0",
    ] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
    // sysfs in a user namespace without a network namespace: the host's, read-only.
    assert_eq!(out.stdout.lines().last(), Some("1"), "no /sys mount\n{out}");
    watch.check(&out);
}

#[test]
fn mounts_inside_proc_are_refused() {
    let Some(t) = Env::new("hostile_proc_mounts") else {
        return;
    };
    let src = t.dir.join("fake-cpuinfo");
    fs::write(&src, "fake cpuinfo\n").unwrap();
    // Allowed: proc itself, and the files lxcfs emulates.
    let out = t.run_sh("cat /proc/cpuinfo", |c| {
        add_mount(c, mount("/proc/cpuinfo", "bind", &src, &["bind", "ro"]));
    });
    out.ok();
    assert_eq!(out.stdout, "fake cpuinfo\n", "{out}");
    // Refused: anything else below /proc, also when a symlink of the image leads there.
    let cases: [(&str, Option<(&str, &str)>); 3] = [
        ("/proc/sys/kernel", None),
        ("/proc/self/attr", None),
        ("/evil/sys", Some(("evil", "/proc"))),
    ];
    for (dest, link) in cases {
        let b = t.bundle_own_rootfs(
            |r| {
                if let Some((name, target)) = link {
                    symlink(target, r.join(name)).unwrap();
                }
            },
            |c| add_mount(c, mount(dest, "tmpfs", "tmpfs", &["size=64k"])),
        );
        let id = t.id("procmnt");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.fails_with(&format!("config.json mounts[7] ({dest})"));
        out.fails_with("is inside /proc");
    }
}
