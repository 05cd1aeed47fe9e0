//! End-to-end tests: the real `berth` binary runs real busybox containers.
//!
//! They need root (namespaces, mounts, mknod). As another user each test prints
//! `skipped: needs root` and passes, unless `CI` is set, where they fail instead.
//!
//! - `lifecycle`: create, start, state, kill, delete, list, pid files
//! - `run`: `run` in the foreground and detached: exit codes, signals
//! - `inside`: what the process sees: pid, hostname, env, cwd, user
//! - `mounts`: mountinfo, read-only root, devices, masked and read-only paths, binds
//! - `errors`: bad input fails with a clear message and leaves nothing behind
//! - `logging`: `--log` / `--log-format`
//! - `cgroups`: limits read back and enforced, devices, update, pause, ps, events, kill --all

mod common;

mod cgroups;
mod engines;
mod errors;
mod exec;
mod hooks;
mod inside;
mod lifecycle;
mod logging;
mod mounts;
mod process;
mod robustness;
mod rootfs_content;
mod rootfs_hostile;
mod rootfs_mounts;
mod rootfs_propagation;
mod rootfs_support;
mod run;
mod seccomp;
mod security_caps;
mod security_cgroup;
mod security_console;
mod security_devnull;
mod security_exe;
mod security_fds;
mod security_parsers;
mod security_paths;
mod security_procfs;
mod security_race;
mod security_support;
