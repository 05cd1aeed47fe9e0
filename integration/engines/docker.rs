//! Docker 20.10: a private dockerd (on a private containerd) with `--add-runtime
//! berth=<wrapper>`; containers run with `--runtime berth --network none`. Docker sends
//! `update --resources -` with the resources on stdin, and injects a prestart hook
//! (`/proc/<dockerd>/exe libnetwork-setkey …`) that berth runs at create.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{BERTH, Env, Out, cgroups_named};

use super::containerd::{self, Containerd};
use super::support::{
    Daemon, ENGINE_DEADLINE, IMAGE, Placeholders, Wrapper, busybox_image, check_contract,
    engine_env, in_mount_ns_of, kill_processes_with, overlay_usable, reap_engine_orphans,
    remove_cgroups, run, run_in_pty, try_run, unmount_under,
};

const DOCKER: &str = "/usr/bin/docker";

/// What dockerd (through containerd's runc v2 shim) sends runc, from engine-calls.md.
const CONTRACT: &[&str] = &[
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json start <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json delete <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json delete --force <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json create --bundle <BUNDLE> --pid-file <BUNDLE>/init.pid <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json kill <ID> 9",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json exec --process <TMP>/runc-process<N> --detach --pid-file <BUNDLE>/<EXECID>.pid <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json update --resources - <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json kill <ID> 15",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json resume <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json ps --format json <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json pause <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json kill <ID> 10",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json exec --process <TMP>/runc-process<N> --console-socket <TMP>/pty<N>/pty.sock --detach --pid-file <BUNDLE>/<EXECID>.pid <ID>",
    "--root <DOCKER-EXEC>/runtime-runc/moby --log <BUNDLE>/log.json --log-format json create --bundle <BUNDLE> --pid-file <BUNDLE>/init.pid --console-socket <TMP>/pty<N>/pty.sock <ID>",
];

/// dockerd with everything private: configuration file (and the trust key it names),
/// data and exec roots, pid file, API socket, containerd, cgroup parent. No iptables, no
/// bridge, no IP forwarding: it changes nothing in the host's network. Dropping it
/// removes its containers, stops dockerd and then containerd by pid, and removes their
/// mounts and cgroups.
struct Dockerd {
    dir: PathBuf,
    sock: PathBuf,
    exec_root: PathBuf,
    cgroup_parent: String,
    wrapper: Wrapper,
    daemon: Option<Daemon>,
    containerd: Option<Containerd>,
}

impl Dockerd {
    fn start(t: &Env) -> Dockerd {
        let dir = t.dir.join("docker");
        fs::create_dir_all(&dir).unwrap();
        let wrapper = Wrapper::new(&t.dir, "berth");
        // dockerd's default namespace in containerd: the runc root becomes .../moby.
        let ctd = Containerd::start(&t.dir.join("ctd"), "moby", false);
        let driver = if overlay_usable(&dir.join("data")) {
            "overlay2"
        } else {
            "vfs"
        };
        // Docker 20.10 keeps a "trust key" in /etc/docker/key.json unless told otherwise.
        fs::write(
            dir.join("daemon.json"),
            serde_json::json!({ "deprecated-key-path": dir.join("key.json") }).to_string(),
        )
        .unwrap();
        let sock = dir.join("docker.sock");
        let exec_root = dir.join("exec");
        let cgroup_parent = format!("berth-it-{}-docker", std::process::id());
        let mut cmd = Command::new("/usr/sbin/dockerd");
        in_mount_ns_of(&mut cmd, ctd.pid())
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--containerd")
            .arg(&ctd.sock)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args(["--bridge=none", "--storage-driver", driver])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(format!("/{cgroup_parent}"))
            .arg("--add-runtime")
            .arg(format!("berth={}", wrapper.path()));
        let mut d = Dockerd {
            sock,
            exec_root,
            cgroup_parent,
            wrapper,
            daemon: None,
            containerd: Some(ctd),
            dir,
        };
        let mut ready = d.cli(&["version", "--format", "{{.Server.Version}}"]);
        let stem = d.dir.join("cmd/ready");
        d.daemon = Some(Daemon::start(
            "dockerd",
            &mut cmd,
            d.dir.join("dockerd.log"),
            Duration::from_secs(30),
            move || {
                try_run(&mut ready, &stem, Duration::from_secs(10))
                    .is_some_and(|o| o.status.success())
            },
        ));
        d
    }

    fn pid(&self) -> i32 {
        self.daemon.as_ref().unwrap().pid()
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_CONFIG", self.dir.join("cli"))
            .arg("--host")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args);
        cmd
    }

    fn docker(&self, args: &[&str]) -> Out {
        run(
            &mut self.cli(args),
            &self.dir.join("cmd/docker"),
            ENGINE_DEADLINE,
        )
    }

    fn docker_ok(&self, args: &[&str]) -> Out {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "{o}\n{}",
            self.daemon.as_ref().unwrap().log_tail()
        );
        o
    }

    /// berth's state directory for Docker's containers (the shim's `--root`).
    fn berth_root(&self) -> PathBuf {
        self.exec_root.join("runtime-runc/moby")
    }

    fn berth_state(&self, id: &str) -> Value {
        let o = run(
            Command::new(BERTH)
                .arg("--root")
                .arg(self.berth_root())
                .args(["state", id]),
            &self.dir.join("cmd/berth-state"),
            ENGINE_DEADLINE,
        );
        o.ok();
        serde_json::from_str(&o.stdout).unwrap()
    }

    fn placeholders(&self) -> Placeholders {
        // Container ids are those berth was asked to create; other ids are exec ids.
        let created: Vec<String> = self
            .wrapper
            .calls()
            .iter()
            .filter(|c| c.contains(" create "))
            .filter_map(|c| c.split(' ').next_back().map(str::to_string))
            .collect();
        let mut p = Placeholders::new(move |h| {
            if created.iter().any(|c| c == h) {
                "<ID>"
            } else {
                "<EXECID>"
            }
        });
        let ctd = self.containerd.as_ref().unwrap();
        let bundles = ctd.state.join("io.containerd.runtime.v2.task/moby");
        p.literal(format!("{}/<ID>", bundles.display()), "<BUNDLE>");
        p.literal(self.exec_root.to_string_lossy(), "<DOCKER-EXEC>");
        p
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let stem = self.dir.join("cmd/teardown");
            let t = Duration::from_secs(30);
            if let Some(o) = try_run(&mut self.cli(&["ps", "--all", "--quiet"]), &stem, t) {
                for id in o.stdout.split_whitespace() {
                    let _ = try_run(&mut self.cli(&["rm", "--force", id]), &stem, t);
                }
            }
            self.daemon.take().unwrap().stop();
        }
        // containerd next (its own clean-up: shims, its mounts), then what dockerd left.
        drop(self.containerd.take());
        let left = kill_processes_with(&self.dir.to_string_lossy());
        if !left.is_empty() {
            eprintln!("docker teardown: killed {left:?}");
        }
        remove_cgroups(&self.cgroup_parent);
        let mounts = unmount_under(&self.dir);
        if !mounts.is_empty() {
            eprintln!("docker teardown: detached {mounts:?}");
        }
        reap_engine_orphans();
    }
}

/// The memory limit of the cgroup `pid` is in (cgroup v1 memory controller, or v2).
fn memory_limit(pid: i32) -> String {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1 = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    let file = match v1 {
        Some(p) => format!("/sys/fs/cgroup/memory{p}/memory.limit_in_bytes"),
        None => {
            let p = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            format!("/sys/fs/cgroup{p}/memory.max")
        }
    };
    fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn docker_run_exec_update_pause_stop_rm() {
    // Dropped in reverse: dockerd, containerd and what they left first, the directory last.
    let mut tools = vec![("/usr/sbin/dockerd", "docker.io"), (DOCKER, "docker.io")];
    tools.extend_from_slice(containerd::TOOLS);
    let Some(t) = engine_env("engines_docker", &tools) else {
        return;
    };
    let d = Dockerd::start(&t);
    d.docker_ok(&["load", "--input", busybox_image().to_str().unwrap()]);
    let run_flags = ["run", "--runtime", "berth", "--network", "none"];

    let mut a = run_flags.to_vec();
    a.extend(["--rm", IMAGE, "sh", "-c", "echo hello from berth; exit 3"]);
    let o = d.docker(&a);
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "hello from berth\n", "{o}");

    // A command that does not exist: Docker's 127, with berth's message (from its log).
    let mut a = run_flags.to_vec();
    a.extend(["--rm", IMAGE, "/nonexistent"]);
    let o = d.docker(&a);
    assert_eq!(o.code(), 127, "{o}");
    assert!(
        o.stderr
            .contains("config.json process.args[0]: exec: /nonexistent: no such file or directory"),
        "docker must show berth's own error message\n{o}"
    );

    let mut a = run_flags.to_vec();
    a.extend([
        "--detach",
        "--name",
        "bt-dock",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
    ]);
    let id = d.docker_ok(&a).stdout.trim().to_string();
    let o = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Pid}} {{.NetworkSettings.SandboxKey}}",
        &id,
    ]);
    let (pid, sandbox_key) = o.stdout.trim().split_once(' ').unwrap();
    let pid: i32 = pid.parse().unwrap();
    let st = d.berth_state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"], pid);

    // The libnetwork hook: in the bundle berth got, and run by berth (it made Docker
    // bind-mount the container's network namespace at the sandbox key).
    let bundle = d.containerd.as_ref().unwrap().bundle(&id);
    let config: Value =
        serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    let hook = &config["hooks"]["prestart"][0];
    assert_eq!(hook["path"], format!("/proc/{}/exe", d.pid()), "{hook}");
    assert_eq!(hook["args"][0], "libnetwork-setkey", "{hook}");
    let netns = fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    // The bind mount is in dockerd's mount namespace: seen through its root.
    let key = fs::metadata(format!("/proc/{}/root{sandbox_key}", d.pid())).unwrap();
    assert_eq!(
        (key.dev(), key.ino()),
        (netns.dev(), netns.ino()),
        "the sandbox key {sandbox_key} is not the container's network namespace"
    );

    let o = d.docker(&["exec", &id, "sh", "-c", "echo exec ok; exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    assert_eq!(o.stdout, "exec ok\n", "{o}");

    let (text, st) = run_in_pty(
        d.cli(&["exec", "--tty", &id, "tty"]),
        (24, 80),
        &[],
        ENGINE_DEADLINE,
    );
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(
        text.contains("/dev/pts/"),
        "no terminal in the exec:\n{text}"
    );

    // update: berth reads the resources from stdin and changes the live cgroup.
    d.docker_ok(&["update", "--memory", "64m", "--memory-swap", "128m", &id]);
    assert_eq!(memory_limit(pid), "67108864");

    d.docker_ok(&["pause", &id]);
    assert_eq!(d.berth_state(&id)["status"], "paused");
    d.docker_ok(&["unpause", &id]);
    assert_eq!(d.berth_state(&id)["status"], "running");
    let o = d.docker_ok(&["top", &id]);
    assert!(o.stdout.contains(&pid.to_string()), "{o}");

    // stop: TERM (the init exits 7 on it), well before the timeout would send KILL.
    d.docker_ok(&["stop", "--time", "60", &id]);
    let o = d.docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &id]);
    assert_eq!(o.stdout.trim(), "7", "{o}");
    d.docker_ok(&["rm", &id]);
    assert!(!d.berth_root().join(&id).exists(), "berth state left");
    assert!(!bundle.exists(), "bundle left");
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));

    check_contract("docker", &d.wrapper.calls(), &d.placeholders(), CONTRACT);
}
