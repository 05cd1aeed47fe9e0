//! CVE-2025-31133: `linux.maskedPaths` are hidden by bind-mounting `/dev/null` over them.
//! If the runtime takes *the image's* `/dev/null`, a symlink there (to a host file, or to a
//! procfs file such as `/proc/sys/kernel/core_pattern`) or a plain file turns "mask
//! `/proc/kcore`" into "bind this file, read-write, over `/proc/kcore`".
//!
//! The stdio variant: a runtime that points the container's stdin/stdout at "its"
//! `/dev/null`, opened by path inside the container, hands the container an fd the runtime
//! opened (with the runtime's privileges) on wherever the image's link leads, a procfs
//! file included.
//!
//! berth masks with the host's `/dev/null`, opened once by fd and checked to be the
//! character device 1:3 (`src/rootfs/hide.rs`, `host_dev_null`), and never opens anything
//! inside the container for stdio: the container's stdio is what berth's caller gave it.
//! `rootfs_hostile.rs` has the base case (a symlink to a host file, in a user namespace).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::Env;
use crate::rootfs_support::drop_mounts;
use crate::security_support::{HostState, host_target, poll};

const OWN_DEV: &[&str] = &["/dev", "/dev/shm", "/dev/mqueue"];

/// Masked paths the test reads back: a file and a directory of the image, and the procfs
/// files of the default list this kernel has.
fn masked() -> Vec<String> {
    let mut v = vec!["/opt/masked-file".to_string(), "/opt/masked-dir".into()];
    for p in [
        "/proc/kcore",
        "/proc/timer_list",
        "/proc/keys",
        "/proc/sched_debug",
    ] {
        if Path::new(p).exists() {
            v.push(p.into());
        }
    }
    v
}

/// In the container: each masked file must be the char device 1:3, and stay empty when
/// written to (a write to /dev/null goes nowhere); the masked directory must be empty.
fn check_script(masked: &[String]) -> String {
    let files: Vec<&str> = masked
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "/opt/masked-dir")
        .collect();
    format!(
        "for f in {}; do echo overwrite > $f 2>/dev/null; \
         echo \"$f $(stat -c '%F %t:%T' $f) size=$(cat $f 2>/dev/null | wc -c)\"; done; \
         ls /opt/masked-dir | wc -l",
        files.join(" ")
    )
}

/// How an image's /dev/null is made fake: (what, the change to the rootfs).
type NullCase = (&'static str, Box<dyn Fn(&Path)>);

fn null_cases(file: &Path) -> Vec<NullCase> {
    let file = file.to_path_buf();
    vec![
        (
            "a symlink to a host file",
            Box::new(move |r: &Path| {
                fs::remove_file(r.join("dev/null")).ok();
                symlink(&file, r.join("dev/null")).unwrap();
            }),
        ),
        (
            "a symlink to a procfs file",
            Box::new(|r: &Path| {
                fs::remove_file(r.join("dev/null")).ok();
                symlink("/proc/sys/kernel/core_pattern", r.join("dev/null")).unwrap();
            }),
        ),
        (
            "a regular file",
            Box::new(|r: &Path| {
                fs::write(r.join("dev/null"), "not a device\n").unwrap();
            }),
        ),
    ]
}

#[test]
fn masking_with_a_fake_dev_null_is_caught_by_string_path() {
    let Some(t) = Env::new("sec_31133_naive") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-null");
    let b = t.bundle_own_rootfs(|r| symlink(&file, r.join("dev/null")).unwrap(), |_| {});
    let rootfs = b.dir.join("rootfs");
    let host = HostState::new(&t, &[&dir]);
    // What a runtime masking with the image's /dev/null does, in a mount namespace of its
    // own: bind "<rootfs>/dev/null" (the host file, through the link) over the masked
    // file, which is then the host file, writable.
    let script = format!(
        "mount --bind {r}/dev/null {r}/opt/masked-file && echo pwned > {r}/opt/masked-file",
        r = rootfs.display()
    );
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(st.success());
    host.assert_caught("masking with the image's /dev/null by path");
    assert_eq!(fs::read_to_string(&file).unwrap(), "pwned\n");
}

#[test]
fn masked_paths_with_a_fake_dev_null() {
    let Some(t) = Env::new("sec_31133") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-null");
    let core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let host = HostState::new(&t, &[&dir]);
    for (what, prep) in null_cases(&file) {
        let masked = masked();
        let b = t.bundle_own_rootfs(
            |r| prep(r),
            |c| {
                drop_mounts(c, OWN_DEV);
                c["linux"]["maskedPaths"] = json!(masked);
                c["process"]["args"] = json!(["sh", "-c", check_script(&masked)]);
            },
        );
        let id = t.id("null");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.ok();
        for f in masked.iter().filter(|p| *p != "/opt/masked-dir") {
            assert!(
                out.stdout
                    .contains(&format!("{f} character special file 1:3 size=0\n")),
                "{what}: {f}\n{out}"
            );
        }
        assert!(out.stdout.ends_with("\n0\n"), "{what}: masked dir\n{out}");
        host.assert_same(&out);
        assert_eq!(
            fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            core_pattern
        );
    }
}

/// The container writes to its stdout and stderr and reads its stdin, then shows what
/// they are and its hostname (which a write through a /dev/null → hostname link changes).
const STDIO: &str = "echo PWNED-OUT; echo PWNED-ERR >&2; cat > /dev/null; \
     for f in 0 1 2; do echo \"fd$f $(stat -L -c '%F %t:%T' /proc/$$/fd/$f)\"; done; \
     echo host=$(hostname)";

#[test]
fn stdio_never_goes_to_the_images_dev_null() {
    let Some(t) = Env::new("sec_31133_stdio") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-null");
    let host = HostState::new(&t, &[&dir]);
    // The image's /dev/null leads to a procfs file: the container's own hostname, so a
    // redirection would show without touching the host. And to a host file.
    for target in [Path::new("/proc/sys/kernel/hostname"), file.as_path()] {
        let b = t.bundle_own_rootfs(
            |r| {
                fs::remove_file(r.join("dev/null")).ok();
                symlink(target, r.join("dev/null")).unwrap();
            },
            |c| {
                drop_mounts(c, OWN_DEV);
                c["linux"]["maskedPaths"] = json!(masked());
                c["process"]["args"] = json!(["sh", "-c", STDIO]);
            },
        );
        // In the foreground, detached, and for exec: stdin is the host's /dev/null,
        // stdout and stderr are berth's files.
        let id = t.id("stdio");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.ok();
        let check = |stdout: &str, stderr: &str, ctx: &str| {
            assert!(stdout.starts_with("PWNED-OUT\n"), "{ctx}: {stdout}");
            assert!(stderr.contains("PWNED-ERR"), "{ctx}: {stderr}");
            assert!(
                stdout.contains("fd0 character special file 1:3\n"),
                "{ctx}: {stdout}"
            );
            assert!(stdout.contains("fd1 regular file"), "{ctx}: {stdout}");
            assert!(stdout.ends_with("host=berth\n"), "{ctx}: {stdout}");
        };
        check(&out.stdout, &out.stderr, "run");

        let id = t.id("stdio-d");
        let out = t.berth(&["run", "-d", "--bundle", b.path(), &id]);
        out.ok();
        let said = poll(std::time::Duration::from_secs(10), || {
            let s = out.stdout_now();
            s.contains("host=").then_some(s)
        })
        .unwrap_or_else(|| panic!("run -d: no output\n{out}"));
        let err = fs::read_to_string(out.stdout_path.with_extension("err")).unwrap();
        check(&said, &err, "run -d");

        let b2 = t.bundle_own_rootfs(
            |r| {
                fs::remove_file(r.join("dev/null")).ok();
                symlink(target, r.join("dev/null")).unwrap();
            },
            |c| {
                drop_mounts(c, OWN_DEV);
                c["process"]["args"] = json!(["sleep", "1000"]);
            },
        );
        let id = t.id("stdio-exec");
        t.run_detached(&b2, &id);
        let out = t.berth(&["exec", &id, "sh", "-c", STDIO]);
        out.ok();
        check(&out.stdout, &out.stderr, "exec");
        host.assert_same(&out);
    }
}
