//! Privileges that must not leak into the container:
//!
//! - CVE-2022-29162 (runc) / CVE-2022-27650 (crun): the inheritable set filled in by the
//!   runtime (after `run`, or with what `exec --cap` adds) lets a non-root process gain
//!   capabilities by executing a file with inheritable file capabilities. berth sets the
//!   inheritable set to exactly what config.json lists, and `exec --cap` adds only to the
//!   bounding, effective and permitted sets (`src/process/identity.rs`, `src/exec.rs`,
//!   `from_flags`).
//! - `exec --user` parsing (crun CVE-2026-30892): a value that is not a plain decimal id
//!   in range (`-1`, `4294967296`, `abc`, `1:`, `:1`) must be refused, never read as some
//!   other id: `-1` is "leave unchanged" to setresuid(2), and `4294967296` wraps to 0
//!   (`src/exec.rs`, `parse_user`).
//!
//! The unsafe variants: a config that fills the inheritable set (what runc did) makes the
//! file-capability program gain a capability, and a naive parser (`strtoul` into a uid_t)
//! leaves a process that asked for `-1` or `4294967296` running as root.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Env, Out};
use crate::security_support::static_probe;

/// `security.capability` of a file: VFS_CAP_REVISION_2 with the effective bit, no
/// permitted capabilities, and CAP_CHOWN (0) and CAP_NET_RAW (13) inheritable.
fn file_caps() -> Vec<u8> {
    let inheritable: u32 = 1 << 0 | 1 << 13;
    let words = [0x0200_0001u32, 0, inheritable, 0, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn set_file_caps(path: &Path) {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let v = file_caps();
    // SAFETY: setxattr reads the NUL-terminated name and path and `v.len()` bytes of `v`.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"security.capability".as_ptr(),
            v.as_ptr().cast(),
            v.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
}

/// An image with `/opt/cap/grep`: busybox, with inheritable file capabilities.
fn image(r: &Path) {
    fs::create_dir_all(r.join("opt/cap")).unwrap();
    fs::copy(r.join("bin/busybox"), r.join("opt/cap/grep")).unwrap();
    set_file_caps(&r.join("opt/cap/grep"));
}

const CAPS: [&str; 3] = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"];

/// uid 1000, CAP_CHOWN and CAP_NET_RAW in the bounding set, no_new_privs off (it would
/// disable file capabilities and hide the leak).
fn config(c: &mut Value, inheritable: Option<&[&str]>) {
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c["process"]["noNewPrivileges"] = json!(false);
    c["process"]["capabilities"] = json!({
        "bounding": CAPS, "effective": CAPS, "permitted": CAPS,
    });
    if let Some(i) = inheritable {
        c["process"]["capabilities"]["inheritable"] = json!(i);
    }
}

/// The capability lines of the file-capability program's own status.
const RUN_CAPPED: &str = "/opt/cap/grep ^Cap /proc/self/status";

fn caps_gained(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("CapPrm:") || l.starts_with("CapEff:"))
        .filter(|l| l.split_whitespace().nth(1) != Some("0000000000000000"))
        .map(str::to_string)
        .collect()
}

#[test]
fn inheritable_capabilities_never_reach_a_file_capability_program() {
    let Some(t) = Env::new("sec_29162") else {
        return;
    };
    // Unsafe: the inheritable set filled in, as runc did; the program gains CAP_CHOWN.
    let b = t.bundle_own_rootfs(image, |c| {
        config(c, Some(&["CAP_CHOWN"]));
        c["process"]["args"] = json!(["sh", "-c", RUN_CAPPED]);
    });
    let id = t.id("leaky");
    let out = t.run(&b, &id);
    out.ok();
    assert!(
        !caps_gained(&out).is_empty(),
        "the unsafe variant gained nothing: the test could not fail\n{out}"
    );

    // After run: nothing.
    let b = t.bundle_own_rootfs(image, |c| {
        config(c, None);
        c["process"]["args"] = json!(["sh", "-c", format!("{RUN_CAPPED}; exec sleep 1000")]);
    });
    let id = t.id("run");
    let out = t.run_detached(&b, &id);
    assert!(
        crate::common::wait_until(std::time::Duration::from_secs(10), || {
            out.stdout_now().contains("CapAmb")
        }),
        "{out}"
    );
    let after_run = Out {
        stdout: out.stdout_now(),
        ..out
    };
    assert!(
        after_run.stdout.contains("CapInh:\t0000000000000000"),
        "{after_run}"
    );
    assert_eq!(caps_gained(&after_run), Vec::<String>::new(), "{after_run}");

    // After exec, with and without --cap, as the container's user and another one.
    for extra in [
        vec![],
        vec!["--cap", "CAP_CHOWN"],
        vec![
            "--cap",
            "CAP_CHOWN",
            "--cap",
            "CAP_NET_RAW",
            "--user",
            "2000:2000",
        ],
    ] {
        let mut args = vec!["exec"];
        args.extend(&extra);
        args.extend([id.as_str(), "/opt/cap/grep", "^Cap", "/proc/self/status"]);
        let out = t.berth(&args);
        out.ok();
        assert!(
            out.stdout.contains("CapInh:\t0000000000000000"),
            "{extra:?}\n{out}"
        );
        assert_eq!(caps_gained(&out), Vec::<String>::new(), "{extra:?}\n{out}");
    }
}

/// A runtime's naive `--user` parsing: strtoul into a uid_t, then setresuid; prints the
/// uid the process ends up with.
const NAIVE_USER: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
	uid_t u = (uid_t)strtoul(argv[1], 0, 10);
	if (setresuid(u, u, u) != 0) perror("setresuid");
	printf("%u\n", getuid());
	return 0;
}
"#;

/// (value, the uid and gid the process must have, or None: refused)
const USERS: &[(&str, Option<(u32, u32)>)] = &[
    ("1", Some((1, 0))),
    ("1:2", Some((1, 2))),
    ("0", Some((0, 0))),
    ("65534", Some((65534, 0))),
    ("4294967294:4294967294", Some((4294967294, 4294967294))),
    ("-1", None),
    ("4294967295", None),
    ("4294967296", None),
    ("abc", None),
    ("1:", None),
    (":1", None),
    ("1:-1", None),
    ("1:2:3", None),
    (" 1", None),
    ("+1", None),
    ("0x1", None),
    ("", None),
];

#[test]
fn exec_user_is_exactly_the_id_given_or_refused() {
    let Some(t) = Env::new("sec_user") else {
        return;
    };
    // Unsafe: a naive parser turns "-1" and "4294967296" into root.
    if let Some(naive) = static_probe("naive-user", NAIVE_USER) {
        for v in ["-1", "4294967296"] {
            let out = std::process::Command::new(&naive).arg(v).output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "0\n",
                "the naive parser of {v:?} must end as root (the class this test catches)"
            );
        }
    }
    let b = t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = t.id("user");
    t.run_detached(&b, &id);
    let mut failures = Vec::new();
    for (v, want) in USERS {
        let flag = format!("--user={v}");
        let out = t.berth(&["exec", &flag, &id, "sh", "-c", "echo ran $(id -u) $(id -g)"]);
        match want {
            Some((u, g)) => {
                if !(out.status.success() && out.stdout == format!("ran {u} {g}\n")) {
                    failures.push(format!("{v:?}: want uid {u} gid {g}\n{out}"));
                }
            }
            None => {
                if out.status.success()
                    || out.stdout.contains("ran")
                    || !out.stderr.contains("--user")
                {
                    failures.push(format!("{v:?}: must be refused naming --user\n{out}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
