//! The command line, flag for flag as runc's, because containerd, Docker and podman call
//! berth with runc's argv (see shared/engine-calls.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::Format;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "berth: an OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (`berth version X.Y.Z`, `commit:` and `spec:` lines, as runc's)
    #[arg(short = 'v', long = "version", global = false)]
    pub version: bool,

    /// Root directory for the state of containers
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Write log lines to FILE (stderr when unset)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of log lines
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: Format,

    /// Log debug lines
    #[arg(long)]
    pub debug: bool,

    /// Read linux.cgroupsPath as systemd's "slice:prefix:name" (berth makes the cgroup
    /// systemd would have made itself; it does not talk to systemd)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,

    /// Rootless mode: auto, true or false
    #[arg(long, value_name = "MODE", default_value = "auto",
          value_parser = ["auto", "true", "false"])]
    pub rootless: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommand named in `args` (argv without argv[0]), found without clap: the global
/// options that take a value are the only ones whose value is skipped. `main` uses it to
/// re-execute `create`, `run` and `exec` from the sealed binary before parsing anything.
pub fn subcommand(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        match a {
            "--root" | "--log" | "--log-format" | "--rootless" => {
                it.next();
            }
            "--" => return it.next().and_then(|s| s.to_str()),
            _ if a.starts_with('-') => {}
            _ => return Some(a),
        }
    }
    None
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(CreateArgs),
    /// Start a created container: the user program is exec'd
    Start(IdArg),
    /// Print the state of a container as OCI state JSON
    State(IdArg),
    /// Send a signal to the container's init (default TERM)
    Kill(KillArgs),
    /// Delete a stopped container and everything made for it
    Delete(DeleteArgs),
    /// Create and start a container; in the foreground, wait for it and exit with its code
    Run(RunArgs),
    /// List containers
    List(ListArgs),
    /// Write a default config.json for a bundle
    Spec(SpecArgs),
    /// Print the features this runtime implements (runtime-spec features.md)
    Features,
    /// Run a new process inside a running container
    Exec(ExecArgs),
    /// List the processes of a container (host pids)
    Ps(PsArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// Change the cgroup limits of a container
    Update(UpdateArgs),
    /// Print a container's resource statistics and OOM events as JSON lines
    Events(EventsArgs),
}

#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory (default: the current directory)
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Unix socket that receives the master side of the terminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// File to write the process id of the container's init to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Move the root instead of pivot_root (for roots on ramfs)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra file descriptors (3 .. 3+N-1) to the container
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Start the container and return at once, leaving it running
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits (foreground only)
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// process.json (an OCI process object) to run, instead of the container's process
    /// with the command line and flags below
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal (sent over --console-socket)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket that receives the master side of the terminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs, without waiting for it
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); may be repeated
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// UID[:GID], numeric
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group id; may be repeated
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (bounding, effective and permitted sets); may be repeated
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass N extra file descriptors (3 .. 3+N-1) to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// AppArmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table (ps output) or json (an array of host pids)
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id
    pub id: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// runc's `update` flags; memory sizes take k, m, g, t suffixes; -1 is unlimited.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// JSON resources (runtime-spec linux.resources) from FILE, or `-` for stdin; 0 means unset
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Block IO weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (microseconds)
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst (microseconds)
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (microseconds)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (microseconds)
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated, ignored)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP memory limit
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics (e.g. 5s, 500ms, 1m)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name or number (KILL, SIGKILL, 9, ...)
    #[arg(default_value = "TERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a created or running container, then delete it
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// table or json
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json in
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// A config for a container run by an unprivileged user
    #[arg(long)]
    pub rootless: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn subcommand_without_clap_agrees_with_clap() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["run", "x"], Some("run")),
            (
                &[
                    "--root",
                    "/r",
                    "--log",
                    "/l",
                    "--log-format",
                    "json",
                    "create",
                    "x",
                ],
                Some("create"),
            ),
            (
                &["--root=/r", "--debug", "exec", "-t", "x", "sh"],
                Some("exec"),
            ),
            (
                &["--systemd-cgroup", "--rootless", "false", "state", "run"],
                Some("state"),
            ),
            (&["--root", "run", "start", "x"], Some("start")),
            (&["--version"], None),
            (&[], None),
        ];
        for (args, want) in cases {
            let os: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            assert_eq!(subcommand(&os), *want, "{args:?}");
            if let Some(w) = want {
                let name = format!("{:?}", parse(args).command.unwrap());
                assert!(
                    name.to_lowercase().starts_with(w),
                    "{args:?}: clap says {name}"
                );
            }
        }
    }

    #[test]
    fn containerd_create_argv() {
        let c = parse(&[
            "--root",
            "/run/x/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "c1",
        ]);
        assert_eq!(
            c.root.as_deref(),
            Some(std::path::Path::new("/run/x/default"))
        );
        assert_eq!(c.log_format, Format::Json);
        match c.command {
            Some(Command::Create(a)) => {
                assert_eq!(a.id, "c1");
                assert_eq!(a.bundle.as_deref(), Some(std::path::Path::new("/b")));
                assert_eq!(
                    a.pid_file.as_deref(),
                    Some(std::path::Path::new("/b/init.pid"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn podman_equals_forms_and_kill_forms() {
        let c = parse(&["--log-format=json", "--log", "/l", "kill", "c1", "9"]);
        match c.command {
            Some(Command::Kill(k)) => {
                assert_eq!(
                    (k.id.as_str(), k.signal.as_str(), k.all),
                    ("c1", "9", false)
                )
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&["kill", "--all", "c1", "KILL"]);
        assert!(matches!(
            c.command,
            Some(Command::Kill(KillArgs { all: true, .. }))
        ));
        let c = parse(&["kill", "c1"]);
        assert!(matches!(c.command, Some(Command::Kill(k)) if k.signal == "TERM"));
    }

    #[test]
    fn run_takes_create_flags_and_detach() {
        let c = parse(&["run", "-d", "-b", "/b", "--preserve-fds", "2", "c1"]);
        match c.command {
            Some(Command::Run(r)) => {
                assert!(r.detach);
                assert_eq!(r.create.preserve_fds, 2);
                assert_eq!(r.create.id, "c1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_flags_are_rejected() {
        let r = Cli::try_parse_from(["berth", "--log-format", "xml", "state", "c"]);
        assert!(r.is_err());
        let r = Cli::try_parse_from(["berth", "delete", "--bogus", "c"]);
        assert!(r.is_err());
    }
}
