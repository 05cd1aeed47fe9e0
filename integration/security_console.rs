//! CVE-2025-52565: with a terminal, the runtime bind-mounts the container's pty on
//! `/dev/console`. A runtime that opens the pty as `/dev/pts/N`, or `/dev/console`, by path
//! inside the container follows the image's (or the running container's) symlinks there:
//! the bind then takes a host or procfs file as its source or target.
//!
//! berth opens `/dev/pts/ptmx` inside the root and checks it is devpts' 5:2, gets the peer
//! from the master with `TIOCGPTPEER` (never by name), and makes `/dev/console` a plain
//! file in place of whatever is there before binding the peer on it by fd
//! (`src/rootfs/console.rs`; `Root::plain_file`). `exec --tty` allocates its pty the same
//! way. `rootfs_hostile.rs` covers a foreground `run` with these links under `script`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use serde_json::json;

use crate::common::Env;
use crate::process::ConsoleReceiver;
use crate::rootfs_support::drop_mounts;
use crate::security_support::{HostState, host_target};

fn hostile(r: &Path, file: &Path) {
    for name in ["console", "ptmx", "tty"] {
        let p = r.join("dev").join(name);
        let _ = fs::remove_file(&p);
        symlink(file, &p).unwrap();
    }
    fs::create_dir_all(r.join("dev/pts")).unwrap();
    for n in 0..4 {
        symlink(file, r.join(format!("dev/pts/{n}"))).unwrap();
    }
}

const SHOW: &str = "tty; stat -c 'console=%F|%t' /dev/console; echo hi > /dev/console; \
     echo hi > /dev/tty; echo end";

#[test]
fn pty_by_name_is_caught_by_string_path() {
    let Some(t) = Env::new("sec_52565_naive") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-console");
    let b = t.bundle_own_rootfs(|r| hostile(r, &file), |_| {});
    let host = HostState::new(&t, &[&dir]);
    // A runtime that opens "/dev/pts/0" in the rootfs by path to use it as the console.
    fs::write(b.dir.join("rootfs/dev/pts/0"), "console output\n").unwrap();
    host.assert_caught("the pty opened by name");
}

#[test]
fn terminal_over_console_socket_with_hostile_dev_links() {
    let Some(t) = Env::new("sec_52565") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-console");
    let host = HostState::new(&t, &[&dir]);
    let b = t.bundle_own_rootfs(
        |r| hostile(r, &file),
        |c| {
            // The image's own /dev, so its links are what berth meets; devpts on /dev/pts.
            drop_mounts(c, &["/dev", "/dev/shm", "/dev/mqueue"]);
            c["process"]["terminal"] = json!(true);
            c["process"]["args"] = json!(["sh", "-c", SHOW]);
        },
    );
    let id = t.id("console");
    let rx = ConsoleReceiver::new(&t.dir);
    let out = t.create(&b, &id, &["--console-socket", rx.sock()]);
    out.ok();
    t.berth(&["start", &id]).ok();
    let (payload, text) = rx.finish().unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(payload.starts_with("/dev/pts/"), "{payload:?}");
    assert!(text.starts_with(&format!("{payload}\n")), "{text:?}");
    // 0x88 = 136: a pty peer of the container's own devpts.
    assert!(
        text.contains("console=character special file|88\n"),
        "{text:?}"
    );
    assert!(text.contains("hi\nhi\nend"), "{text:?}");
    host.assert_same(&text);
}

#[test]
fn exec_tty_after_the_container_planted_links() {
    let Some(t) = Env::new("sec_52565_exec") else {
        return;
    };
    let (dir, file) = host_target(&t, "host-console");
    let host = HostState::new(&t, &[&dir]);
    // The running container replaces its /dev entries itself (its /dev is a tmpfs it may
    // write), then an engine runs `exec --tty` in it.
    let plant = format!(
        "for n in console ptmx tty; do rm -f /dev/$n; ln -s {f} /dev/$n; done; \
         echo planted; exec sleep 1000",
        f = file.display()
    );
    let b = t.bundle(|c| c["process"]["args"] = json!(["sh", "-c", plant]));
    let id = t.id("exec-tty");
    let out = t.run_detached(&b, &id);
    assert!(
        crate::common::wait_until(std::time::Duration::from_secs(10), || out
            .stdout_now()
            .contains("planted")),
        "{out}"
    );
    for _ in 0..3 {
        let rx = ConsoleReceiver::new(&t.dir);
        let out = t.berth(&[
            "exec",
            "--tty",
            "--console-socket",
            rx.sock(),
            &id,
            "sh",
            "-c",
            "tty; echo hi > /dev/console 2>/dev/null; echo end",
        ]);
        out.ok();
        let (payload, text) = rx.finish().unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(payload.starts_with("/dev/pts/"), "{payload:?}");
        assert!(text.starts_with(&format!("{payload}\n")), "{text:?}");
        assert!(text.contains("end"), "{text:?}");
        host.assert_same(&text);
    }
}
