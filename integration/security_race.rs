//! Races on a shared volume (CVE-2021-30465's exploit, CVE-2024-45310): two containers
//! share a bind volume; one swaps a directory and a symlink to a host directory with
//! `renameat2(RENAME_EXCHANGE)` in a loop while the other starts again and again with a
//! mount whose destination goes through the volume. A runtime that checks the destination
//! and then mounts on it by path, or makes its directories by path, sometimes follows the
//! symlink onto the host.
//!
//! berth resolves and makes every component by fd inside the container's root
//! (`RESOLVE_IN_ROOT`), so a symlink met at any moment leads inside the root, and mounts
//! onto the fd it resolved (`src/rootfs/path.rs`, `src/rootfs/mountapi.rs`).
//!
//! The unsafe variant: while the swaps run, the test makes the destination's directory by
//! string path, as such a runtime would, and lands in the host directory. Bounded: 10 s of
//! starts (RACE_SECS overrides).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Env, add_mount, wait_until};
use crate::rootfs_support::mount;
use crate::security_support::{HostState, host_target, install, static_probe};

/// `race A B SECONDS`: exchange A and B as fast as possible; prints the count.
const RACE: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	if (argc < 4) return 2;
	time_t end = time(0) + atoi(argv[3]);
	long n = 0, failed = 0;
	printf("racing\n");
	fflush(stdout);
	while (time(0) < end) {
		for (int i = 0; i < 1000; i++)
			if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* RENAME_EXCHANGE */))
				failed++;
			else
				n++;
	}
	printf("swaps=%ld failed=%ld\n", n, failed);
	return 0;
}
"#;

fn secs() -> u64 {
    std::env::var("RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

#[test]
fn mounts_through_a_volume_another_container_swaps() {
    let Some(t) = Env::new("sec_race") else {
        return;
    };
    let Some(race) = static_probe("race", RACE) else {
        return;
    };
    let (target, _) = host_target(&t, "host-race-target");
    let vol = t.dir.join("volume");
    fs::create_dir_all(vol.join("d")).unwrap();
    fs::create_dir_all(vol.join("e")).unwrap();
    // One absolute link, one that climbs with `..`.
    symlink(&target, vol.join("l")).unwrap();
    symlink(
        Path::new(&"../".repeat(40)).join(target.strip_prefix("/").unwrap()),
        vol.join("m"),
    )
    .unwrap();

    // The swapper: a container with the volume at /vol.
    let run_for = secs() + 20;
    let swapper = t.bundle_own_rootfs(
        |r| install(&race, r, "bin/race"),
        |c| {
            add_mount(c, mount("/vol", "bind", &vol, &["bind"]));
            c["process"]["args"] = json!([
                "sh",
                "-c",
                format!("race /vol/d /vol/l {run_for} & race /vol/e /vol/m {run_for} & wait")
            ]);
        },
    );
    let sid = t.id("swapper");
    let s_out = t.run_detached(&swapper, &sid);
    assert!(
        wait_until(Duration::from_secs(10), || s_out
            .stdout_now()
            .matches("racing")
            .count()
            == 2),
        "{s_out}"
    );

    // Unsafe: directories made by string path through the volume reach the host.
    let host = HostState::new(&t, &[&target]);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && host.changes().is_empty() {
        for sub in ["d", "e"] {
            let _ = fs::create_dir(vol.join(sub).join("by-string"));
            let _ = fs::remove_dir(vol.join(sub).join("by-string"));
            let _ = fs::create_dir(vol.join(sub).join("by-string"));
        }
    }
    host.assert_caught("mkdir through the swapped volume by string path");
    let _ = fs::remove_dir(target.join("by-string"));

    // berth: start, again and again, with mounts through the volume.
    let host = HostState::new(&t, &[&target]);
    let starter = t.bundle_own_rootfs(
        |_| {},
        |c| {
            add_mount(c, mount("/vol", "bind", &vol, &["bind"]));
            add_mount(c, mount("/vol/d/sub", "tmpfs", "tmpfs", &["size=64k"]));
            add_mount(
                c,
                mount("/vol/e/sub/deeper", "tmpfs", "tmpfs", &["size=64k"]),
            );
            c["process"]["args"] = json!(["true"]);
        },
    );
    let end = Instant::now() + Duration::from_secs(secs());
    let (mut ok, mut failed) = (0, Vec::new());
    while Instant::now() < end {
        let id = t.id("starter");
        let out = t.run(&starter, &id);
        if out.status.success() {
            ok += 1;
        } else {
            failed.push(out.stderr.clone());
        }
        t.berth(&["delete", "--force", &id]);
        let c = host.changes();
        assert!(c.is_empty(), "after {ok} starts: {c:#?}\n{out}");
    }
    t.berth(&["kill", &sid, "KILL"]);
    eprintln!(
        "race: {ok} starts succeeded, {} failed while the volume was swapped; swapper: {}",
        failed.len(),
        s_out.stdout_now().trim()
    );
    assert!(ok > 0, "no start succeeded: {failed:#?}");
    // A failed start is a clean error about the path, never a hang or a crash.
    for f in &failed {
        assert!(f.contains("config.json"), "{f}");
    }
    host.assert_same(&"after the race");
}
