//! Paths inside the rootfs that a hostile image turns into symlinks out of it:
//!
//! - mount destinations through absolute symlinks and `..` (CVE-2021-30465, crun
//!   CVE-2019-18837);
//! - `/proc` or `/sys` a symlink (youki CVE-2025-54867);
//! - `/dev` a symlink to a host directory (runc CVE-2026-41579, crun CVE-2026-47766);
//! - every file berth itself writes into the rootfs (mount points, device nodes, the
//!   `/dev` symlinks, the cwd it makes, the paths it masks or makes read-only) replaced by
//!   a symlink to a host path.
//!
//! berth resolves every such path inside the root by fd (`src/rootfs/path.rs`,
//! `Root::resolve`/`mkdir_all`/`create` with `RESOLVE_IN_ROOT`, `Root::plain_file` and
//! `mknodat` in the parent's fd for nodes) and mounts onto the fd it resolved; `/proc` and
//! `/sys` must be real directories (`open_no_symlinks`).
//!
//! Each test first does what a string-path runtime would (join the path to the rootfs and
//! let the host follow the links) and sees the host change; then berth runs the same image
//! and nothing on the host changes. `rootfs_hostile.rs` has more cases of each class.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Env, add_mount};
use crate::rootfs_support::{drop_mounts, mount};
use crate::security_support::{HostState, host_target};

fn replace_with_symlink(path: &Path, target: &Path) {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path).unwrap();
    } else {
        let _ = fs::remove_file(path);
    }
    symlink(target, path).unwrap();
}

/// `..` enough times to climb from anywhere in a rootfs to `/`, then `target`.
fn climbing(target: &Path) -> PathBuf {
    PathBuf::from("../".repeat(40)).join(target.strip_prefix("/").unwrap())
}

fn script(c: &mut Value, s: &str) {
    c["process"]["args"] = json!(["sh", "-c", s]);
}

/// The unsafe variant: what a runtime that joins paths to the rootfs as strings does to
/// `dest` (make the directory, then a file in it), done here by the test.
fn by_string(rootfs: &Path, dest: &str) {
    let p = rootfs.join(dest.trim_start_matches('/'));
    let _ = fs::create_dir_all(&p);
    let _ = fs::write(p.join("made-by-string-path"), "x");
}

#[test]
fn mount_destinations_through_absolute_symlinks_and_dotdot() {
    let Some(t) = Env::new("sec_30465") else {
        return;
    };
    let (target, _) = host_target(&t, "host-mount-target");
    // The file link aims elsewhere: the bind at /opt/abs covers `target` inside the root.
    let (file_dir, file) = host_target(&t, "host-file-target");
    let dotdot = format!("/opt/../../../../../../..{}/dotdot-here", target.display());
    let dests = [
        "/opt/abs/tmpfs-here".to_string(),
        "/opt/rel/rel-here".to_string(),
        "/opt/abs".to_string(),
        dotdot,
    ];
    let prep = |r: &Path| {
        symlink(&target, r.join("opt/abs")).unwrap();
        symlink(climbing(&target), r.join("opt/rel")).unwrap();
        symlink(&file, r.join("etc/file-link")).unwrap();
    };

    // Unsafe: each destination joined to the rootfs by string reaches the host.
    let b = t.bundle_own_rootfs(prep, |_| {});
    for d in &dests {
        let host = HostState::new(&t, &[&target, &file_dir]);
        by_string(&b.dir.join("rootfs"), d);
        host.assert_caught(&format!("mkdir of {d} by string path"));
        fs::remove_dir_all(&target).unwrap();
        fs::create_dir_all(&target).unwrap();
    }

    let src = t.dir.join("bind-src");
    fs::create_dir_all(&src).unwrap();
    let src_file = t.dir.join("bind-src-file");
    fs::write(&src_file, "from the bind\n").unwrap();
    let host = HostState::new(&t, &[&target, &file_dir]);
    let b = t.bundle_own_rootfs(prep, |c| {
        for d in &dests[..2] {
            add_mount(c, mount(d, "tmpfs", "tmpfs", &["size=64k"]));
        }
        add_mount(c, mount(&dests[3], "tmpfs", "tmpfs", &["size=64k"]));
        add_mount(
            c,
            mount("/etc/file-link", "bind", &src_file, &["bind", "ro"]),
        );
        // Last: it covers the directory the others are made in.
        add_mount(c, mount(&dests[2], "bind", &src, &["bind", "ro"]));
        script(
            c,
            "cat /etc/file-link; echo pwned > /opt/abs/pwned 2>&1; true",
        );
    });
    let id = t.id("dest");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.ok();
    assert!(out.stdout.starts_with("from the bind\n"), "{out}");
    host.assert_same(&out);
    // They all landed inside the root, where the links lead when read inside it.
    let inner = b.dir.join("rootfs").join(target.strip_prefix("/").unwrap());
    for made in ["tmpfs-here", "rel-here", "dotdot-here"] {
        assert!(
            inner.join(made).is_dir(),
            "{made} not inside the root\n{out}"
        );
    }
}

#[test]
fn proc_or_sys_a_symlink_to_the_host() {
    let Some(t) = Env::new("sec_54867") else {
        return;
    };
    let (target, _) = host_target(&t, "host-procfs");
    for name in ["proc", "sys"] {
        for link in [target.clone(), climbing(&target)] {
            // Unsafe: a mount point taken by string path is the host directory.
            let b = t.bundle_own_rootfs(|r| replace_with_symlink(&r.join(name), &link), |_| {});
            let host = HostState::new(&t, &[&target]);
            by_string(&b.dir.join("rootfs"), name);
            host.assert_caught(&format!("/{name} -> {} by string path", link.display()));
            let _ = fs::remove_file(target.join("made-by-string-path"));

            let host = HostState::new(&t, &[&target]);
            let id = t.id("procsys");
            let out = t.leaves_nothing(&id, || t.run(&b, &id));
            let fs_name = if name == "proc" { "proc" } else { "sysfs" };
            out.fails_with(&format!("{fs_name} is only mounted on a real directory"));
            host.assert_same(&out);
        }
    }
}

#[test]
fn dev_a_symlink_to_a_host_directory() {
    let Some(t) = Env::new("sec_dev_link") else {
        return;
    };
    let (target, _) = host_target(&t, "host-dev");
    let links = [target.clone(), climbing(&target)];
    for link in &links {
        // Unsafe: the nodes and /dev symlinks made by string path land in the host dir.
        let b = t.bundle_own_rootfs(|r| replace_with_symlink(&r.join("dev"), link), |_| {});
        let host = HostState::new(&t, &[&target]);
        by_string(&b.dir.join("rootfs"), "/dev");
        let _ = symlink("/proc/self/fd", b.dir.join("rootfs/dev/fd"));
        host.assert_caught("/dev nodes made by string path");
        for f in ["made-by-string-path", "fd"] {
            let _ = fs::remove_file(target.join(f));
        }
    }
    let host = HostState::new(&t, &[&target]);
    for link in &links {
        // With berth's tmpfs on /dev, and with the image's own /dev; with the devices of
        // linux.devices and a devpts too.
        for own_dev in [false, true] {
            let b = t.bundle_own_rootfs(
                |r| replace_with_symlink(&r.join("dev"), link),
                |c| {
                    if own_dev {
                        drop_mounts(c, &["/dev", "/dev/shm", "/dev/mqueue"]);
                    }
                    c["linux"]["devices"] =
                        json!([{ "path": "/dev/extra", "type": "c", "major": 1, "minor": 7 }]);
                    c["linux"]["maskedPaths"] = json!(["/opt/masked-file"]);
                    script(
                        c,
                        "stat -c '%n %F %t:%T' /dev/null /dev/extra; ls -d /dev/pts/ptmx; \
                         echo x > /dev/null && echo null-ok; readlink /dev/fd",
                    );
                },
            );
            let id = t.id("dev");
            let out = t.leaves_nothing(&id, || t.run(&b, &id));
            out.ok();
            assert!(
                out.stdout.starts_with(
                    "/dev/null character special file 1:3\n/dev/extra character special file 1:7\n"
                ),
                "link {link:?} own /dev {own_dev}\n{out}"
            );
            assert!(out.stdout.contains("null-ok\n/proc/self/fd\n"), "{out}");
            host.assert_same(&out);
        }
    }
}

/// Every path berth writes into the rootfs (with the image's own /dev, so the image's
/// entries are what berth meets), each a symlink to its own host file or directory.
const WRITTEN: &[(&str, bool)] = &[
    // (path, is a directory)
    ("/dev/null", false),
    ("/dev/zero", false),
    ("/dev/full", false),
    ("/dev/random", false),
    ("/dev/urandom", false),
    ("/dev/tty", false),
    ("/dev/extra", false),
    ("/dev/ptmx", false),
    ("/dev/pts", true),
    ("/dev/shm", true),
    ("/dev/mqueue", true),
    ("/mnt/tmpfs", true),
    ("/mnt/bind-dir", true),
    ("/etc/resolv.conf", false),
    ("/work", true),
    ("/opt/masked-link", false),
    ("/opt/masked-dir-link", true),
    ("/opt/ro-link", true),
];

/// The `/dev` links berth makes when the image has nothing there; made links to the host.
const DEV_LINKS: &[&str] = &[
    "/dev/fd",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/core",
];

#[test]
fn every_file_berth_writes_replaced_by_a_symlink_to_the_host() {
    let Some(t) = Env::new("sec_written") else {
        return;
    };
    let hostdir = t.dir.join("host-written");
    fs::create_dir_all(&hostdir).unwrap();
    let host_path = |p: &str| hostdir.join(p.trim_start_matches('/').replace('/', "_"));
    for (p, dir) in WRITTEN {
        if *dir {
            fs::create_dir_all(host_path(p)).unwrap();
            fs::write(host_path(p).join("precious"), "host\n").unwrap();
        } else {
            fs::write(host_path(p), "precious host data\n").unwrap();
        }
    }
    for p in DEV_LINKS {
        fs::write(host_path(p), "precious host data\n").unwrap();
    }
    let prep = |r: &Path| {
        fs::create_dir_all(r.join("mnt")).unwrap();
        for (p, _) in WRITTEN.iter().map(|(p, d)| (*p, *d)) {
            let at = r.join(p.trim_start_matches('/'));
            let _ = fs::remove_dir_all(&at);
            let _ = fs::remove_file(&at);
            symlink(host_path(p), &at).unwrap();
        }
        for p in DEV_LINKS {
            symlink(host_path(p), r.join(p.trim_start_matches('/'))).unwrap();
        }
    };

    // Unsafe: writing each of them by string path changes the host.
    let b = t.bundle_own_rootfs(prep, |_| {});
    let host = HostState::new(&t, &[&hostdir]);
    for (p, dir) in WRITTEN {
        let at = b.dir.join("rootfs").join(p.trim_start_matches('/'));
        if *dir {
            let _ = fs::write(at.join("made"), "x");
        } else {
            let _ = fs::write(&at, "overwritten");
        }
    }
    let changes = host.assert_caught("writes through the image's links by string path");
    assert!(changes.len() >= WRITTEN.len(), "{changes:#?}");

    for (p, dir) in WRITTEN {
        if *dir {
            let _ = fs::remove_file(host_path(p).join("made"));
        } else {
            fs::write(host_path(p), "precious host data\n").unwrap();
        }
    }
    let src_dir = t.dir.join("bind-src");
    fs::create_dir_all(&src_dir).unwrap();
    let src_file = t.dir.join("resolv.conf");
    fs::write(&src_file, "nameserver 192.0.2.1\n").unwrap();
    let host = HostState::new(&t, &[&hostdir]);
    let b = t.bundle_own_rootfs(prep, |c| {
        drop_mounts(c, &["/dev"]);
        c["linux"]["devices"] =
            json!([{ "path": "/dev/extra", "type": "c", "major": 1, "minor": 7 }]);
        c["linux"]["maskedPaths"] = json!(["/opt/masked-link", "/opt/masked-dir-link"]);
        c["linux"]["readonlyPaths"] = json!(["/opt/ro-link"]);
        c["process"]["cwd"] = json!("/work/sub");
        // Writable, so berth makes the cwd itself (a read-only root refuses it).
        c["root"]["readonly"] = json!(false);
        add_mount(c, mount("/mnt/tmpfs", "tmpfs", "tmpfs", &["size=64k"]));
        add_mount(c, mount("/mnt/bind-dir", "bind", &src_dir, &["bind"]));
        add_mount(
            c,
            mount("/etc/resolv.conf", "bind", &src_file, &["bind", "ro"]),
        );
        script(
            c,
            "cat /etc/resolv.conf; stat -c '%n %F' /dev/null /dev/extra; \
             for f in /dev/null /dev/zero /dev/full /dev/tty /etc/resolv.conf; do echo x > $f; done 2>/dev/null; \
             echo pwned > /mnt/tmpfs/pwned; echo pwned > /mnt/bind-dir/pwned; pwd; echo done",
        );
    });
    let id = t.id("written");
    let out = t.leaves_nothing(&id, || t.run(&b, &id));
    out.ok();
    assert!(out.stdout.starts_with("nameserver 192.0.2.1\n"), "{out}");
    assert!(
        out.stdout.contains("/dev/null character special file\n"),
        "{out}"
    );
    assert!(out.stdout.ends_with("done\n"), "{out}");
    host.assert_same(&out);
    // The bind mount's own source changed, which is what it is for.
    assert!(src_dir.join("pwned").exists(), "{out}");
}
