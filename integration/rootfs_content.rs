//! Mounts whose content comes from elsewhere: a tmpfs filled from the image
//! (`tmpcopyup`), overlay layers, and idmapped binds; checked from inside the container
//! and from the host (where writes land, what the layers and sources keep).

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::Path;

use serde_json::json;

use crate::common::{Env, add_mount};
use crate::rootfs_support::{Watch, mount, mountinfo, must, tag};

#[test]
fn tmpcopyup_starts_with_the_images_contents() {
    let Some(t) = Env::new("tmpcopyup") else {
        return;
    };
    let outside = t.dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "host\n").unwrap();
    let b = t.bundle_own_rootfs(
        |r| {
            let seed = r.join("opt/seed");
            fs::create_dir_all(seed.join("sub")).unwrap();
            fs::write(seed.join("file"), "seed\n").unwrap();
            fs::set_permissions(seed.join("file"), fs::Permissions::from_mode(0o604)).unwrap();
            chown(seed.join("file"), Some(1), Some(2)).unwrap();
            fs::write(seed.join("sub/inner"), "inner\n").unwrap();
            fs::set_permissions(seed.join("sub"), fs::Permissions::from_mode(0o751)).unwrap();
            chown(seed.join("sub"), Some(3), Some(4)).unwrap();
            symlink("file", seed.join("link")).unwrap();
            // A link to a host file: copied as a link, never followed.
            symlink(outside.join("secret"), seed.join("escape")).unwrap();
            nix::unistd::mkfifo(&seed.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        },
        |c| {
            c["root"]["readonly"] = json!(false);
            add_mount(c, mount("/opt/seed", "tmpfs", "tmpfs", &["tmpcopyup", "mode=755", "size=1m"]));
            c["process"]["args"] = json!(["sh", "-c",
                "for p in file sub sub/inner fifo link; do \
                   echo \"stat=$p|$(stat -c '%F|%a|%u:%g' /opt/seed/$p)\"; done; \
                 echo \"link=$(readlink /opt/seed/link)\"; echo \"escape=$(readlink /opt/seed/escape)\"; \
                 echo \"content=$(cat /opt/seed/file /opt/seed/sub/inner | tr '\\n' ' ')\"; \
                 echo new > /opt/seed/new; echo write=$?; cat /proc/self/mountinfo"]);
        },
    );
    let watch = Watch::new(&[&outside, &b.dir.join("rootfs/opt/seed")]);
    let out = t.run(&b, &t.id("copyup"));
    out.ok();
    let want = [
        "stat=file|regular file|604|1:2",
        "stat=sub|directory|751|3:4",
        "stat=sub/inner|regular file|644|0:0",
        "stat=fifo|fifo|600|0:0",
        "stat=link|symbolic link|777|0:0",
        "link=file",
        &format!("escape={}", outside.join("secret").display()),
        "content=seed inner ",
        "write=0",
    ];
    for w in want {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
    let m = mountinfo(&out.stdout);
    assert_eq!(must(&m, "/opt/seed", &out).fstype, "tmpfs");
    // The write went to the tmpfs (the process has no CAP_DAC_OVERRIDE: the copies' modes
    // and owners hold); the image and the host file are as they were.
    watch.check(&out);

    // Control: without tmpcopyup the tmpfs starts empty.
    let out = t.run_sh("ls -A /opt/masked-dir | wc -l", |c| {
        add_mount(c, mount("/opt/masked-dir", "tmpfs", "tmpfs", &["size=1m"]));
    });
    out.ok();
    assert_eq!(out.stdout.trim(), "0", "{out}");
}

#[test]
fn overlay_layers_upper_and_work() {
    let Some(t) = Env::new("overlay") else {
        return;
    };
    let d = &t.dir;
    for (dir, files) in [
        ("l1", &[("a", "l1-a"), ("both", "l1")][..]),
        ("l2", &[("b", "l2-b"), ("both", "l2")][..]),
        ("l3", &[("c", "l3-c"), ("both", "l3")][..]),
    ] {
        fs::create_dir_all(d.join(dir)).unwrap();
        for (f, content) in files {
            fs::write(d.join(dir).join(f), content).unwrap();
        }
    }
    fs::create_dir_all(d.join("up")).unwrap();
    fs::create_dir_all(d.join("work")).unwrap();
    let lower = format!(
        "lowerdir={}:{}:{}",
        d.join("l1").display(),
        d.join("l2").display(),
        d.join("l3").display()
    );
    let upper = format!("upperdir={}", d.join("up").display());
    let work = format!("workdir={}", d.join("work").display());
    let script = "for f in a b c both; do echo \"$f=$(cat /merged/$f)\"; done; \
                  echo new > /merged/new; echo changed > /merged/a; rm /merged/b; echo writes=$?; \
                  echo x > /ro/x; echo ro=$?; cat /proc/self/mountinfo";
    let lowers = [d.join("l1"), d.join("l2"), d.join("l3")];
    let watch = Watch::new(&lowers.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    let out = t.run_sh(script, |c| {
        add_mount(
            c,
            mount("/merged", "overlay", "overlay", &[&lower, &upper, &work]),
        );
        add_mount(c, mount("/ro", "overlay", "overlay", &[&lower]));
    });
    out.ok();
    for w in ["a=l1-a", "b=l2-b", "c=l3-c", "both=l1", "writes=0"] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
    assert_ne!(
        tag(&out.stdout, "ro=", &out),
        "0",
        "an overlay without upperdir took a write\n{out}"
    );
    let m = mountinfo(&out.stdout);
    let ov = must(&m, "/merged", &out);
    assert_eq!(ov.fstype, "overlay", "{out}");
    assert!(
        ov.sb.iter().any(|o| o.starts_with("upperdir=")),
        "{:?}",
        ov.sb
    );
    // Writes land in the upper directory; the layers are untouched.
    assert_eq!(fs::read_to_string(d.join("up/new")).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(d.join("up/a")).unwrap(), "changed\n");
    let whiteout = fs::symlink_metadata(d.join("up/b")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type()),
        "no whiteout for b"
    );
    watch.check(&out);

    // Layer paths relative to the bundle.
    let b = t.bundle(|c| {
        add_mount(
            c,
            mount(
                "/merged",
                "overlay",
                "overlay",
                &["lowerdir=rl1:rl2", "upperdir=rup", "workdir=rwork"],
            ),
        );
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /merged/r1 /merged/r2; echo made > /merged/made"
        ]);
    });
    for (dir, file) in [
        ("rl1", Some("r1")),
        ("rl2", Some("r2")),
        ("rup", None),
        ("rwork", None),
    ] {
        fs::create_dir_all(b.dir.join(dir)).unwrap();
        if let Some(f) = file {
            fs::write(b.dir.join(dir).join(f), format!("{f}\n")).unwrap();
        }
    }
    let out = t.run(&b, &t.id("rel"));
    out.ok();
    assert_eq!(out.stdout, "r1\nr2\n", "{out}");
    assert_eq!(
        fs::read_to_string(b.dir.join("rup/made")).unwrap(),
        "made\n"
    );
}

#[test]
fn overlay_options_are_checked_before_mounting() {
    let Some(t) = Env::new("overlay_checks") else {
        return;
    };
    let d = &t.dir;
    for dir in ["l1", "up", "work"] {
        fs::create_dir_all(d.join(dir)).unwrap();
    }
    fs::write(d.join("afile"), "").unwrap();
    // Another mount than the upper directory's, for workdir.
    let shm_work = Path::new("/dev/shm").join(format!("berth-overlay-work-{}", std::process::id()));
    fs::create_dir_all(&shm_work).unwrap();
    let p = |s: &str| d.join(s).display().to_string();
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec![
                format!("lowerdir={}", p("l1")),
                format!("upperdir={}", p("missing")),
                format!("workdir={}", p("work")),
            ],
            vec![
                format!("overlay option upperdir={}", p("missing")),
                "No such file or directory".into(),
            ],
        ),
        (
            vec![format!("lowerdir={}:{}", p("l1"), p("afile"))],
            vec![format!("layer {}", p("afile")), "not a directory".into()],
        ),
        (
            vec![
                format!("lowerdir={}", p("l1")),
                format!("upperdir={}", p("up")),
                format!("workdir={}", shm_work.display()),
            ],
            vec![
                "not on the same mount".into(),
                format!("upperdir={}", p("up")),
            ],
        ),
        (
            vec![
                format!("upperdir={}", p("up")),
                format!("workdir={}", p("work")),
            ],
            vec!["needs a lowerdir".into()],
        ),
        (
            vec![
                format!("lowerdir={}", p("l1")),
                format!("upperdir={}", p("up")),
            ],
            vec!["needs a workdir".into()],
        ),
    ];
    let watch = Watch::new(&[
        d.join("up").as_path(),
        d.join("work").as_path(),
        shm_work.as_path(),
    ]);
    for (opts, phrases) in cases {
        let b = t.bundle(|c| {
            let o: Vec<&str> = opts.iter().map(String::as_str).collect();
            add_mount(c, mount("/merged", "overlay", "overlay", &o));
        });
        let id = t.id("ovl");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.fails_with("config.json mounts[7] (/merged)");
        for ph in &phrases {
            out.fails_with(ph);
        }
    }
    watch.check(&"overlay checks");
    let _ = fs::remove_dir_all(&shm_work);
}

#[test]
fn idmapped_mounts_show_mapped_owners() {
    let Some(t) = Env::new("idmap") else { return };
    let src = t.dir.join("idsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f0"), "").unwrap();
    fs::write(src.join("f1000"), "").unwrap();
    chown(src.join("f1000"), Some(1000), Some(1001)).unwrap();
    let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let script = "for m in plain id rid; do for f in f0 f1000; do \
                    echo \"$m/$f=$(stat -c %u:%g /mnt/$m/$f)\"; done; done";
    let out = t.run_sh(script, |c| {
        add_mount(c, mount("/mnt/plain", "bind", &src, &["bind"]));
        let mut id = mount("/mnt/id", "bind", &src, &["bind"]);
        id["uidMappings"] = maps.clone();
        id["gidMappings"] = maps.clone();
        add_mount(c, id);
        let mut rid = mount("/mnt/rid", "bind", &src, &["rbind", "ridmap"]);
        rid["uidMappings"] = maps.clone();
        rid["gidMappings"] = maps.clone();
        add_mount(c, rid);
    });
    out.ok();
    for w in [
        "plain/f0=0:0",
        "plain/f1000=1000:1001",
        "id/f0=100000:100000",
        "id/f1000=101000:101001",
        "rid/f0=100000:100000",
        "rid/f1000=101000:101001",
    ] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
    // The source keeps its owners.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(src.join("f0")).unwrap().uid(), 0);

    let mut uid_only = mount("/mnt/id", "bind", &src, &["bind"]);
    uid_only["uidMappings"] = maps.clone();
    let cases = [
        (uid_only, "gidMappings: missing"),
        (
            mount("/mnt/id", "bind", &src, &["bind", "idmap"]),
            "there are none",
        ),
        (
            mount("/mnt/id", "tmpfs", "tmpfs", &["idmap"]),
            "only for bind mounts",
        ),
    ];
    for (m, phrase) in cases {
        let b = t.bundle(|c| add_mount(c, m.clone()));
        let id = t.id("idmap-bad");
        let out = t.leaves_nothing(&id, || t.run(&b, &id));
        out.fails_with("config.json mounts[7] (/mnt/id)");
        out.fails_with(phrase);
    }
}

#[test]
fn idmapped_mounts_work_in_a_container_with_its_own_user_namespace() {
    let Some(t) = Env::new("idmap-userns") else {
        return;
    };
    let src = t.dir.join("idsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f0"), "").unwrap();
    fs::write(src.join("f1000"), "").unwrap();
    chown(src.join("f1000"), Some(1000), Some(1001)).unwrap();
    let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let script = "for m in plain id; do for f in f0 f1000; do \
                    echo \"$m/$f=$(stat -c %u:%g /mnt/$m/$f)\"; done; done";
    // Mount points made ahead: the rootfs belongs to host root, which the container's
    // user namespace does not map.
    let prep = |root: &Path| {
        fs::create_dir_all(root.join("mnt/plain")).unwrap();
        fs::create_dir_all(root.join("mnt/id")).unwrap();
    };
    let b = t.bundle_own_rootfs(prep, |c| {
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps.clone();
        add_mount(c, mount("/mnt/plain", "bind", &src, &["bind"]));
        let mut id = mount("/mnt/id", "bind", &src, &["bind"]);
        id["uidMappings"] = maps.clone();
        id["gidMappings"] = maps.clone();
        add_mount(c, id);
    });
    let out = t.run(&b, &t.id("idmap"));
    out.ok();
    // Through the idmapped mount the files belong to the container's own ids; through the
    // plain bind, host root is unmapped in the container's user namespace.
    for w in ["id/f0=0:0", "id/f1000=1000:1001", "plain/f0=65534:65534"] {
        assert!(out.stdout.lines().any(|l| l == w), "missing {w:?}\n{out}");
    }
}
