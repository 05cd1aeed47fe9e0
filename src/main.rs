//! berth: an OCI container runtime. See README.md.

mod bundle;
mod cgroups;
mod cli;
mod console;
mod container;
mod create;
mod delete;
mod error;
mod events;
mod exec;
mod exeseal;
mod features;
mod hooks;
mod jsonpath;
mod kill;
mod list;
mod logging;
mod pause;
mod process;
mod procfs;
mod ps;
mod resume;
mod rootfs;
mod run;
mod seccomp;
mod signal;
mod spec;
mod start;
mod state;
mod timefmt;
mod update;

use std::path::PathBuf;

use clap::Parser;

use cli::{Cli, Command};
use container::Store;
use error::Result;

fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("berth"),
        _ => PathBuf::from(format!("/tmp/berth-{}", nix::unistd::geteuid())),
    }
}

fn version() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_COMMIT"),
        oci_spec::runtime::VERSION
    )
}

fn dispatch(cli: Cli) -> Result<i32> {
    let store = Store::new(cli.root.clone().unwrap_or_else(default_root));
    cgroups::set_systemd(cli.systemd_cgroup);
    let Some(cmd) = cli.command else {
        print!("{}", version());
        return Ok(0);
    };
    // CVE-2019-5736: the commands that exec container content run from a sealed binary
    // (already done in `main` unless the argument scan there missed it or it failed).
    if matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        exeseal::ensure()?;
    }
    match cmd {
        Command::Create(a) => create::create(&store, &a)?,
        Command::Start(a) => start::start(&store, &a.id)?,
        Command::State(a) => state::state(&store, &a.id)?,
        Command::Kill(a) => kill::kill(&store, &a)?,
        Command::Delete(a) => delete::delete(&store, &a)?,
        Command::Run(a) => return run::run(&store, &a),
        Command::List(a) => list::list(&store, &a)?,
        Command::Spec(a) => spec::spec(&a)?,
        Command::Exec(a) => return exec::exec(&store, &a),
        Command::Ps(a) => ps::ps(&store, &a)?,
        Command::Pause(a) => pause::pause(&store, &a.id)?,
        Command::Resume(a) => resume::resume(&store, &a.id)?,
        Command::Update(a) => update::update(&store, &a)?,
        Command::Events(a) => events::events(&store, &a)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&features::features())?),
    }
    Ok(0)
}

fn main() {
    // CVE-2019-5736: the commands that exec container content run from a sealed binary.
    // Re-executed before the arguments are parsed, so they are parsed once; a failure here
    // is reported by the same check in `dispatch`, once --log is known.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if matches!(cli::subcommand(&args), Some("create" | "run" | "exec")) {
        let _ = exeseal::ensure();
    }
    drop(args);
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version());
        return;
    }
    logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    log::debug!("berth {:?}", std::env::args().collect::<Vec<_>>());
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log::error!("{e}");
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    }
}
