//! podman 4.3 with conmon: `podman --runtime <berth>`. podman passes no `--root`, so
//! berth keeps its containers in its default state directory (/run/berth), and it asks
//! berth for `--version`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{BERTH, Env, Out, cgroups_named};

use super::support::{
    Daemon, ENGINE_DEADLINE, IMAGE, Placeholders, Wrapper, busybox_image, check_contract,
    engine_env, in_mount_ns_of, in_new_mount_ns, kill_processes_with, overlay_usable,
    reap_engine_orphans, remove_cgroups, run, run_in_pty, try_run, unmount_under,
};

const TOOLS: &[(&str, &str)] = &[("/usr/bin/podman", "podman"), ("/usr/bin/conmon", "conmon")];

/// berth's state directory when called without `--root`, as podman calls it.
const DEFAULT_ROOT: &str = "/run/berth";

/// What podman (through conmon) sends runc, from engine-calls.md.
const CONTRACT: &[&str] = &[
    "delete --force <ID>",
    "start <ID>",
    "--log-format=json --log <PODMAN-runroot>/overlay-containers/<ID>/userdata/oci-log create --bundle <PODMAN-root>/overlay-containers/<ID>/userdata --pid-file <PODMAN-runroot>/overlay-containers/<ID>/userdata/pidfile <ID>",
    "kill <ID> 9",
    "--log-format=json --log <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/oci-log exec --pid-file <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/exec_pid --process <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/exec-process-<N> --detach <ID>",
    "kill <ID> 15",
    "checkpoint --help",
    "resume <ID>",
    "pause <ID>",
    "kill <ID> 10",
    "checkpoint --image-path <PODMAN-root>/overlay-containers/<ID>/userdata/checkpoint --work-path <PODMAN-root>/overlay-containers/<ID>/userdata <ID>",
    "--version",
    "--log-format=json --log <PODMAN-runroot>/overlay-containers/<ID>/userdata/oci-log create --bundle <PODMAN-root>/overlay-containers/<ID>/userdata --pid-file <PODMAN-runroot>/overlay-containers/<ID>/userdata/pidfile --console-socket <TMP>/conmon-term.<X> <ID>",
    "--log-format=json --log <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/oci-log exec --pid-file <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/exec_pid --process <PODMAN-root>/overlay-containers/<ID>/userdata/<ID>/exec-process-<N> --detach --tty --console-socket <TMP>/conmon-term.<X> <ID>",
];

/// podman with everything private: storage (`--root`, `--runroot`), `--tmpdir` (with
/// file locks instead of podman's shared-memory ones), configuration (CONTAINERS_CONF,
/// CONTAINERS_STORAGE_CONF), network configuration, no events, cgroupfs with a cgroup
/// parent named after the test. Dropping it removes its containers, conmons, mounts,
/// cgroups and berth's state for them.
struct Podman {
    dir: PathBuf,
    /// `--runroot`: podman refuses one longer than 50 characters (conmon's socket paths
    /// must fit), so it is /run/berth-it-<pid>-pod-<tag> rather than inside `dir`.
    runroot: PathBuf,
    wrapper: Wrapper,
    driver: &'static str,
    cgroup_parent: String,
    ulimits: [String; 2],
    /// A process that keeps the mount namespace every podman command here runs in (see
    /// `in_new_mount_ns`): podman has no daemon, and conmon outlives the commands.
    mount_ns: Daemon,
}

impl Podman {
    fn new(t: &Env, tag: &str) -> Podman {
        let dir = t.dir.join("podman");
        for d in ["cni", "image-copy"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let driver = if overlay_usable(&dir.join("root")) {
            "overlay"
        } else {
            "vfs"
        };
        // runtime_supports_json: podman gives --log and --log-format=json only to the
        // runtimes named there (crun, runc, …), and then reads errors from that log.
        // The rest keeps podman off shared host paths: /dev/shm/libpod_lock (lock_type),
        // /var/tmp (image_copy_tmp_dir), /etc/cni/net.d and /run/containers/networks
        // (the CNI backend, with its configuration here).
        fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[engine]
runtime_supports_json = ["berth"]
lock_type = "file"
image_copy_tmp_dir = "{d}/image-copy"
events_logger = "none"
cgroup_manager = "cgroupfs"
[network]
network_backend = "cni"
network_config_dir = "{d}/cni"
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{d}/root\"\nrunroot = \"/run/{RUNROOT_PREFIX}{pid}-pod-{tag}\"\n",
                d = dir.display(),
                pid = std::process::id(),
            ),
        )
        .unwrap();
        fs::write(dir.join("registries.conf"), "").unwrap();
        remove_stale_runroots();
        let mount_ns = Daemon::start(
            "mount namespace holder",
            in_new_mount_ns(Command::new("sleep").arg("infinity")),
            dir.join("holder.log"),
            Duration::from_secs(5),
            || true,
        );
        Podman {
            mount_ns,
            runroot: PathBuf::from(format!(
                "/run/{RUNROOT_PREFIX}{}-pod-{tag}",
                std::process::id()
            )),
            wrapper: Wrapper::new(&t.dir, "berth"),
            cgroup_parent: format!("berth-it-{}-podman-{tag}", std::process::id()),
            ulimits: ulimits_within_hard_limits(),
            dir,
            driver,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = &self.dir;
        let mut cmd = Command::new("/usr/bin/podman");
        in_mount_ns_of(&mut cmd, self.mount_ns.pid())
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--events-backend", "none", "--cgroup-manager", "cgroupfs"])
            .args([
                "--storage-driver",
                self.driver,
                "--runtime",
                self.wrapper.path(),
            ])
            .args(args);
        cmd
    }

    fn podman(&self, args: &[&str]) -> Out {
        run(
            &mut self.command(args),
            &self.dir.join("cmd/podman"),
            ENGINE_DEADLINE,
        )
    }

    fn podman_ok(&self, args: &[&str]) -> Out {
        let o = self.podman(args);
        o.ok();
        o
    }

    /// `run` with the options every container here needs: no network, rlimits this host
    /// allows, our cgroup parent; then `rest` (flags, image, command).
    fn run_args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        for u in &self.ulimits {
            a.extend(["--ulimit", u.as_str()]);
        }
        a.extend_from_slice(rest);
        a
    }

    fn placeholders(&self) -> Placeholders {
        let mut p = Placeholders::new(|_| "<ID>");
        p.literal(self.dir.join("root").to_string_lossy(), "<PODMAN-root>");
        p.literal(self.runroot.to_string_lossy(), "<PODMAN-runroot>");
        p
    }

    /// The container ids berth was asked to create.
    fn created_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .wrapper
            .calls()
            .iter()
            .filter(|c| c.contains(" create "))
            .filter_map(|c| c.split(' ').next_back().map(str::to_string))
            .collect();
        ids.dedup();
        ids
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let stem = self.dir.join("cmd/teardown");
        let t = Duration::from_secs(30);
        if let Some(o) = try_run(&mut self.command(&["ps", "--all", "--quiet"]), &stem, t) {
            for id in o.stdout.split_whitespace() {
                let _ = try_run(
                    &mut self.command(&["rm", "--force", "--time", "0", id]),
                    &stem,
                    t,
                );
            }
        }
        // conmon (and podman's clean-up processes) carry our paths on their command line.
        let left = kill_processes_with(&self.dir.to_string_lossy());
        if !left.is_empty() {
            eprintln!("podman teardown: killed {left:?}");
        }
        // berth's state in the default directory, shared with everything else on the host:
        // only the containers podman made here.
        for id in self.created_ids() {
            if Path::new(DEFAULT_ROOT).join(&id).exists() {
                eprintln!("podman teardown: berth state of {id} left in {DEFAULT_ROOT}");
                let _ = try_run(
                    Command::new(BERTH).args(["delete", "--force", &id]),
                    &stem,
                    t,
                );
            }
        }
        remove_cgroups(&self.cgroup_parent);
        let mut mounts = unmount_under(&self.dir);
        mounts.extend(unmount_under(&self.runroot));
        if !mounts.is_empty() {
            eprintln!("podman teardown: detached {mounts:?}");
        }
        let _ = fs::remove_dir_all(&self.runroot);
        reap_engine_orphans();
    }
}

const RUNROOT_PREFIX: &str = "berth-it-";

/// Run roots of test processes that are gone (killed before their clean-up ran).
fn remove_stale_runroots() {
    let Ok(rd) = fs::read_dir("/run") else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((pid, _)) = name
            .strip_prefix(RUNROOT_PREFIX)
            .and_then(|r| r.split_once("-pod-"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            unmount_under(&e.path());
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// `--ulimit` values for the two rlimits podman raises to 1048576 by default, which a
/// process without CAP_SYS_RESOURCE may not: at most our hard limits, and at most 4096,
/// because podman lowers its own RLIMIT_NPROC (to 32768) before conmon and the runtime
/// inherit it.
fn ulimits_within_hard_limits() -> [String; 2] {
    use nix::sys::resource::{Resource, getrlimit};
    let hard = |r| getrlimit(r).unwrap().1.min(4096);
    let n = hard(Resource::RLIMIT_NOFILE);
    let p = hard(Resource::RLIMIT_NPROC);
    [format!("nofile={n}:{n}"), format!("nproc={p}:{p}")]
}

/// The 64-hex-digit id podman gave container `name`, and its init's pid.
fn inspect(p: &Podman, name: &str) -> (String, i32) {
    let o = p.podman_ok(&["inspect", "--format", "{{.Id}} {{.State.Pid}}", name]);
    let (id, pid) = o.stdout.trim().split_once(' ').unwrap();
    (id.to_string(), pid.parse().unwrap())
}

#[test]
fn podman_run_exec_stop_rm() {
    // Dropped in reverse: podman's containers and what they left first, the directory last.
    let Some(t) = engine_env("engines_podman", TOOLS) else {
        return;
    };
    let p = Podman::new(&t, "main");
    p.podman_ok(&["load", "--input", busybox_image().to_str().unwrap()]);

    // podman runs `berth --version` and shows what it printed.
    let o = p.podman_ok(&["info", "--format", "{{.Host.OCIRuntime.Version}}"]);
    assert!(o.stdout.starts_with("berth version "), "{o}");

    let o = p.podman(&p.run_args(&["--rm", IMAGE, "sh", "-c", "echo hello from berth; exit 3"]));
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "hello from berth\n", "{o}");

    // A command that does not exist: podman's 127, with berth's message (from its log).
    let o = p.podman(&p.run_args(&["--rm", IMAGE, "/nonexistent"]));
    assert_eq!(o.code(), 127, "{o}");
    assert!(
        o.stderr
            .contains("config.json process.args[0]: exec: /nonexistent: no such file or directory"),
        "podman must show berth's own error message\n{o}"
    );

    p.podman_ok(&p.run_args(&[
        "--detach",
        "--name",
        "bt-pod",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
    ]));
    let (id, pid) = inspect(&p, "bt-pod");
    // No --root: the container lives in berth's default state directory.
    let o = run(
        Command::new(BERTH).args(["state", &id]),
        &p.dir.join("cmd/berth-state"),
        ENGINE_DEADLINE,
    );
    o.ok();
    let st: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(st["status"], "running", "{o}");
    assert_eq!(st["pid"], pid, "{o}");

    let o = p.podman(&["exec", "bt-pod", "sh", "-c", "echo exec ok; exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    assert_eq!(o.stdout, "exec ok\n", "{o}");

    let (text, st) = run_in_pty(
        p.command(&["exec", "--tty", "bt-pod", "tty"]),
        (24, 80),
        &[],
        ENGINE_DEADLINE,
    );
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(
        text.contains("/dev/pts/"),
        "no terminal in the exec:\n{text}"
    );

    // stop: TERM (the init exits 7 on it), before the timeout would send KILL.
    p.podman_ok(&["stop", "--time", "60", "bt-pod"]);
    let o = p.podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", "bt-pod"]);
    assert_eq!(o.stdout.trim(), "7", "{o}");
    p.podman_ok(&["rm", "bt-pod"]);
    assert!(
        !Path::new(DEFAULT_ROOT).join(&id).exists(),
        "berth state left in {DEFAULT_ROOT}"
    );
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));

    for id in p.created_ids() {
        assert!(
            !Path::new(DEFAULT_ROOT).join(&id).exists(),
            "berth state of {id} left in {DEFAULT_ROOT}"
        );
    }
    check_contract("podman", &p.wrapper.calls(), &p.placeholders(), CONTRACT);
}

#[test]
fn podman_interactive_tty_session() {
    let Some(t) = engine_env("engines_podman_tty", TOOLS) else {
        return;
    };
    let p = Podman::new(&t, "tty");
    p.podman_ok(&["load", "--input", busybox_image().to_str().unwrap()]);

    // A person at a terminal: the shell's prompt, a command line, its answer, `exit 3`.
    // The container's terminal has our size from the start (process.consoleSize).
    let cmd = p.command(&p.run_args(&["--rm", "--interactive", "--tty", IMAGE, "sh"]));
    let (text, st) = run_in_pty(
        cmd,
        (37, 111),
        &[
            ("# ", "tty; stty size; echo $((6 * 7))\n"),
            ("42\n", "exit 3\n"),
        ],
        ENGINE_DEADLINE,
    );
    assert_eq!(st.code(), Some(3), "{text}");
    assert!(text.contains("/dev/pts/0\n"), "{text}");
    assert!(text.contains("37 111\n"), "{text}");

    for id in p.created_ids() {
        assert!(
            !Path::new(DEFAULT_ROOT).join(&id).exists(),
            "berth state of {id} left in {DEFAULT_ROOT}"
        );
    }
    check_contract("podman", &p.wrapper.calls(), &p.placeholders(), CONTRACT);
}
