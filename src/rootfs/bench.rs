//! The per-start cost of resolving by fd, measured against plain path mounts.
//!
//! `cargo test --bins rootfs::bench -- --ignored --nocapture --test-threads=1` (as root)
//!
//! A forked child in a mount namespace of its own builds the root filesystem of
//! `berth spec`'s config (7 mounts, with the cgroup hierarchies; 6 devices; 5 links; 10
//! masked and 5 read-only paths; a read-only root) again and again, two ways, interleaved:
//! - `fd`: berth's own [`super::build`] (openat2 inside the root, detached mounts attached
//!   by fd, every check);
//! - `path`: the same mounts with mount(2) on joined path strings, mkdir -p, mknod and
//!   symlink by path, bind + remount for read-only: what runtimes did before openat2.
//!
//! Each build is torn down with one lazy unmount of the rootfs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use oci_spec::runtime::Spec;

use super::options;
use super::{Setup, build};

/// Rounds of each way; `BERTH_BENCH_ROUNDS` overrides (e.g. 20 under `strace -c`).
fn rounds() -> usize {
    std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// `BERTH_BENCH_ONLY=fd` or `=path` runs one way only, to count its system calls.
fn only(way: &str) -> bool {
    std::env::var("BERTH_BENCH_ONLY").map_or(true, |o| o == way)
}

fn spec() -> Spec {
    serde_json::from_value(crate::spec::default_config()).unwrap()
}

fn rootfs() -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-bench-rootfs-{}", std::process::id()));
    for sub in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    d
}

fn fd_way(spec: &Spec, rootfs: &Path) {
    let mut nothing = || Ok(());
    let s = Setup {
        before_pivot: &mut nothing,
        placed: &|| Ok(()),
        spec,
        rootfs,
        bundle: rootfs,
        no_pivot: false,
        userns: false,
        mount_ns: true,
        terminal: None,
        idmapped: None,
    };
    let (root, _) = build(&s).unwrap();
    drop(root);
}

fn path_way(spec: &Spec, rootfs: &Path) {
    let at = |p: &Path| rootfs.join(p.strip_prefix("/").unwrap_or(p));
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap();
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let o = options::parse(m.options().as_deref().unwrap_or_default());
        let dest = at(m.destination());
        std::fs::create_dir_all(&dest).unwrap();
        let typ = m.typ().as_deref().unwrap_or("");
        if typ == "cgroup" {
            // The same shape as berth's: a tmpfs, then a fresh mount of each hierarchy.
            mount(
                Some("tmpfs"),
                &dest,
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                Some("mode=755"),
            )
            .unwrap();
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            for line in info.lines() {
                let Some((pre, post)) = line.split_once(" - ") else {
                    continue;
                };
                let point = pre.split(' ').nth(4).unwrap_or("");
                let Some(dir) = point.strip_prefix("/sys/fs/cgroup/") else {
                    continue;
                };
                let mut p = post.split(' ');
                let fstype = p.next().unwrap_or("");
                let opts = p.nth(1).unwrap_or("");
                let data: Vec<&str> = opts.split(',').filter(|o| *o != "rw").collect();
                let sub = dest.join(dir);
                std::fs::create_dir_all(&sub).unwrap();
                let data = if fstype == "cgroup2" {
                    String::new()
                } else {
                    data.join(",")
                };
                mount(
                    Some(fstype),
                    &sub,
                    Some(fstype),
                    o.flags,
                    Some(data.as_str()),
                )
                .unwrap();
            }
            continue;
        }
        let data = o.data.join(",");
        let src = m
            .source()
            .as_deref()
            .map(|p| p.as_os_str())
            .unwrap_or(typ.as_ref());
        mount(
            Some(src),
            &dest,
            Some(typ),
            o.flags - MsFlags::MS_REC,
            Some(data.as_str()),
        )
        .unwrap();
    }
    let old = nix::sys::stat::umask(Mode::empty());
    for (p, maj, min) in super::dev::DEFAULT_DEVICES {
        let dest = at(Path::new(p));
        let _ = std::fs::remove_file(&dest);
        mknod(
            &dest,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*maj, *min),
        )
        .unwrap();
        nix::unistd::chown(&dest, Some(0.into()), Some(0.into())).unwrap();
    }
    nix::sys::stat::umask(old);
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, at(Path::new("/dev")).join(name));
    }
    let linux = spec.linux().as_ref().unwrap();
    for p in linux.masked_paths().as_deref().unwrap_or_default() {
        let dest = at(Path::new(p));
        let Ok(meta) = std::fs::metadata(&dest) else {
            continue;
        };
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &dest,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .unwrap();
        } else {
            mount(
                Some("/dev/null"),
                &dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap();
        }
    }
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        let dest = at(Path::new(p));
        if !dest.exists() {
            continue;
        }
        mount(
            Some(&dest),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap();
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &dest, None::<&str>, ro, None::<&str>).unwrap();
    }
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, rootfs, None::<&str>, ro, None::<&str>).unwrap();
}

fn teardown(rootfs: &Path) {
    umount2(rootfs, MntFlags::MNT_DETACH).unwrap();
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    (us(v[v.len() / 2]), mean, us(v[v.len() * 9 / 10]))
}

fn measure() -> String {
    let spec = spec();
    let rootfs = rootfs();
    let (mut fd, mut path) = (Vec::new(), Vec::new());
    let n = rounds();
    // One round of warming (page cache, dentries), then the two ways interleaved.
    for i in 0..=n {
        if only("fd") {
            let t = Instant::now();
            fd_way(&spec, &rootfs);
            fd.push(t.elapsed());
            teardown(&rootfs);
        }
        if only("path") {
            let t = Instant::now();
            path_way(&spec, &rootfs);
            path.push(t.elapsed());
            teardown(&rootfs);
        }
        if i == 0 {
            fd.clear();
            path.clear();
        }
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    if fd.is_empty() || path.is_empty() {
        return format!("{n} rounds of one way only\n");
    }
    let (fm, fa, f9) = stats(fd);
    let (pm, pa, p9) = stats(path);
    format!(
        "{n} rounds, µs per root filesystem (median / mean / p90)\n\
         fd   (berth):      {fm:8.0} / {fa:8.0} / {f9:8.0}\n\
         path (mount(2)):   {pm:8.0} / {pa:8.0} / {p9:8.0}\n\
         difference:        {:+8.0} µs median ({:+.1}%)\n",
        fm - pm,
        (fm - pm) / pm * 100.0
    )
}

#[test]
#[ignore = "a benchmark: needs root, run with --ignored --nocapture --test-threads=1"]
fn per_start_cost_of_fd_resolution() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the test runs single-threaded (--test-threads=1); the child only runs the
    // measurement and leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(r);
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            let text = measure();
            let _ = nix::unistd::write(&w, text.as_bytes());
            // SAFETY: leave the child without running the harness's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut out = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert!(
                matches!(st, nix::sys::wait::WaitStatus::Exited(_, 0)),
                "{st:?}\n{out}"
            );
            assert!(!out.is_empty(), "the measuring child said nothing");
            println!("{out}");
        }
    }
}
