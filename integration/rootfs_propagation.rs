//! Mount propagation: `linux.rootfsPropagation` seen from inside, and bind mounts whose
//! propagation lets mounts cross (or not) between the host and the container.
//!
//! The host side of these tests is a mount namespace of their own (`unshare -m`), made
//! shared or private as each case needs, so the real host's mount table is never touched
//! and its propagation does not matter.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{BERTH, Env, add_mount};
use crate::rootfs_support::{add_caps, mount, mountinfo, tag};

/// Run `script` with sh in a new mount namespace whose mounts are `propagation`
/// (`shared` or `private`); its stdout, or a failed test.
fn in_mount_ns(propagation: &str, script: &str, dir: &Path) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("ns-script-{n}.sh"));
    fs::write(&file, script).unwrap();
    let out = Command::new("timeout")
        .args([
            "60",
            "unshare",
            "-m",
            "--propagation",
            propagation,
            "sh",
            "-e",
        ])
        .arg(&file)
        .output()
        .expect("unshare (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "namespace script failed: {}\n{text}\n{err}",
        out.status
    );
    text
}

fn privileged(c: &mut Value) {
    add_caps(c, &["CAP_SYS_ADMIN"]);
}

#[test]
fn root_propagation_modes_as_seen_inside() {
    let Some(t) = Env::new("rootfs_propagation") else {
        return;
    };
    // As runtime-tools checks it: a recursive bind of / made in the container sees what is
    // mounted under / after it only when / is shared; unbindable refuses the bind.
    let script = "if mount -o rbind / /t 2>/dev/null; then echo bind=ok; else echo bind=refused; fi; \
                  mount -t tmpfs -o size=64k late /m; \
                  if grep -q ' /t/m ' /proc/self/mountinfo; then echo late=exposed; else echo late=hidden; fi; \
                  cat /proc/self/mountinfo";
    // (rootfsPropagation, bind, late mount, tag "/" must carry)
    let table = [
        (Some("shared"), "ok", "exposed", Some("shared:")),
        (Some("rshared"), "ok", "exposed", Some("shared:")),
        (Some("slave"), "ok", "hidden", None),
        (Some("private"), "ok", "hidden", None),
        (Some("unbindable"), "refused", "hidden", Some("unbindable")),
        (None, "ok", "hidden", None),
    ];
    for (prop, bind, late, root_tag) in table {
        let b = t.bundle_own_rootfs(
            |r| {
                fs::create_dir_all(r.join("t")).unwrap();
                fs::create_dir_all(r.join("m")).unwrap();
            },
            |c| {
                privileged(c);
                if let Some(p) = prop {
                    c["linux"]["rootfsPropagation"] = json!(p);
                }
                c["process"]["args"] = json!(["sh", "-c", script]);
            },
        );
        let out = t.run(&b, &t.id("prop"));
        out.ok();
        assert_eq!(tag(&out.stdout, "bind=", &out), bind, "{prop:?}\n{out}");
        assert_eq!(tag(&out.stdout, "late=", &out), late, "{prop:?}\n{out}");
        let m = mountinfo(&out.stdout);
        let root = m.iter().find(|x| x.point == "/").unwrap();
        match root_tag {
            Some(tg) => assert!(
                root.tags.iter().any(|x| x.starts_with(tg)),
                "{prop:?}: / is {:?}\n{out}",
                root.tags
            ),
            None => assert!(
                !root.tags.iter().any(|x| x.starts_with("shared:")),
                "{prop:?}: / is {:?}\n{out}",
                root.tags
            ),
        }
    }
}

#[test]
fn bind_propagation_between_host_and_container() {
    let Some(t) = Env::new("bind_propagation") else {
        return;
    };
    // (rootfsPropagation, the bind's option, host mount seen inside, container mount
    // seen on the host)
    let table = [
        (None, "rslave", true, false),
        (None, "rshared", true, false),
        (None, "rprivate", false, false),
        (Some("rshared"), "rshared", true, true),
        (Some("rslave"), "rslave", true, false),
    ];
    for (n, (prop, opt, host_to_ct, ct_to_host)) in table.into_iter().enumerate() {
        let src = t.dir.join(format!("shared-src-{n}"));
        let out_dir = t.dir.join(format!("out-{n}"));
        fs::create_dir_all(src.join("from-host")).unwrap();
        fs::create_dir_all(src.join("from-ct")).unwrap();
        fs::create_dir_all(&out_dir).unwrap();
        let b = t.bundle(|c| {
            privileged(c);
            if let Some(p) = prop {
                c["linux"]["rootfsPropagation"] = json!(p);
            }
            add_mount(c, mount("/mnt/s", "bind", &src, &["rbind", opt]));
            add_mount(c, mount("/out", "bind", &out_dir, &["rbind", "rprivate"]));
            c["process"]["args"] = json!(["sh", "-c",
                "touch /out/ready; i=0; while [ ! -e /out/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
                 if [ -e /mnt/s/from-host/marker ]; then echo seen > /out/host-to-ct; else echo unseen > /out/host-to-ct; fi; \
                 mount -t tmpfs -o size=64k ctmount /mnt/s/from-ct; touch /mnt/s/from-ct/marker; touch /out/done; \
                 i=0; while [ ! -e /out/checked ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"]);
        });
        let id = t.id("bprop");
        let wait = |f: &str| {
            format!(
                "i=0; while [ ! -e {}/{f} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; [ -e {}/{f} ]",
                out_dir.display(),
                out_dir.display()
            )
        };
        let script = format!(
            "mount --bind {src} {src}; mount --make-shared {src}\n\
             {berth} --root {root} run -d --bundle {bundle} {id} >/dev/null\n\
             {wait_ready}\n\
             mount -t tmpfs -o size=64k hostmount {src}/from-host; touch {src}/from-host/marker\n\
             touch {out}/go\n\
             {wait_done}\n\
             if [ -e {src}/from-ct/marker ]; then echo ct-to-host=seen; else echo ct-to-host=unseen; fi\n\
             echo host-to-ct=$(cat {out}/host-to-ct)\n\
             touch {out}/checked\n",
            src = src.display(),
            berth = BERTH,
            root = t.root.display(),
            bundle = b.path(),
            out = out_dir.display(),
            wait_ready = wait("ready"),
            wait_done = wait("done"),
        );
        t.track(&id);
        let text = in_mount_ns("private", &script, &t.dir);
        let seen = |b: bool| if b { "seen" } else { "unseen" };
        assert_eq!(
            tag(&text, "host-to-ct=", &text),
            seen(host_to_ct),
            "{prop:?} {opt}\n{text}"
        );
        assert_eq!(
            tag(&text, "ct-to-host=", &text),
            seen(ct_to_host),
            "{prop:?} {opt}\n{text}"
        );
    }
}

#[test]
fn nothing_leaks_to_a_shared_host() {
    let Some(t) = Env::new("shared_host_leak") else {
        return;
    };
    // On a host whose / is shared (systemd's default), every mount the container makes,
    // the rootfs bind first, must stay in the container's namespace: compared with the
    // wrapper namespace's table before, while the container runs, and after.
    // (rootfsPropagation, --no-pivot)
    let cases = [
        (None, false),
        (Some("shared"), false),
        (Some("rshared"), false),
        (Some("slave"), false),
        (Some("private"), false),
        (Some("unbindable"), false),
        (None, true),
        (Some("rshared"), true),
    ];
    for (n, (prop, no_pivot)) in cases.into_iter().enumerate() {
        let vol = t.dir.join(format!("vol-{n}"));
        fs::create_dir_all(vol.join("sub")).unwrap();
        let out_dir = t.dir.join(format!("leak-out-{n}"));
        fs::create_dir_all(&out_dir).unwrap();
        let b = t.bundle(|c| {
            privileged(c);
            if let Some(p) = prop {
                c["linux"]["rootfsPropagation"] = json!(p);
            }
            c["root"]["readonly"] = json!(false);
            add_mount(c, mount("/mnt/vol", "bind", &vol, &["rbind", "rw"]));
            add_mount(c, mount("/out", "bind", &out_dir, &["rbind", "rprivate"]));
            add_mount(c, mount("/mnt/t", "tmpfs", "tmpfs", &["size=64k", "shared"]));
            c["process"]["args"] = json!(["sh", "-c",
                "mount -t tmpfs -o size=64k inner /mnt/vol/sub; mount -t tmpfs -o size=64k inner2 /mnt/t; \
                 touch /out/done; i=0; while [ ! -e /out/checked ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"]);
        });
        let id = t.id("leak");
        t.track(&id);
        let script = format!(
            "cat /proc/self/mountinfo > {out}/before\n\
             {berth} --root {root} run -d {pivot}--bundle {bundle} {id} >/dev/null\n\
             i=0; while [ ! -e {out}/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; [ -e {out}/done ]\n\
             cat /proc/self/mountinfo > {out}/during\n\
             touch {out}/checked\n\
             i=0; while {berth} --root {root} state {id} 2>/dev/null | grep -q running && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
             cat /proc/self/mountinfo > {out}/after\n",
            out = out_dir.display(),
            berth = BERTH,
            root = t.root.display(),
            bundle = b.path(),
            pivot = if no_pivot { "--no-pivot " } else { "" },
        );
        in_mount_ns("shared", &script, &t.dir);
        let read = |f: &str| fs::read_to_string(out_dir.join(f)).unwrap();
        let (before, during, after) = (read("before"), read("during"), read("after"));
        let root_line = before
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap();
        assert!(
            root_line.contains("shared:"),
            "the wrapper's / is not shared: {root_line}"
        );
        assert_eq!(
            before, during,
            "{prop:?} no-pivot {no_pivot}: container mounts reached the host while it ran"
        );
        assert_eq!(
            before, after,
            "{prop:?} no-pivot {no_pivot}: container mounts were left on the host"
        );
        let inside = mountinfo(&before);
        assert!(
            !inside.iter().any(|m| m.point.starts_with(b.path())),
            "{prop:?}"
        );
    }
}
