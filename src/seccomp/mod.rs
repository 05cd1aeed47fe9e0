//! linux.seccomp: compiled to a BPF filter while the container is set up (so a bad profile
//! fails `create`), loaded as the init's last step before execve.
//!
//! berth compiles the profile itself, in four steps, one file each:
//! - [`profile`]: config.json's profile to decisions per architecture and call number
//!   (names resolved in [`arch`]'s tables, generated from the kernel's by
//!   `hack/gen-syscall-tables.sh`);
//! - [`codegen`]: those decisions to BPF, a binary search over call numbers;
//! - [`bpf`]: labels to jump offsets, with trampolines where a jump is too far;
//! - [`load`] and [`notify`]: seccomp(2), and the notify fd handed to the agent.
//!
//! Why not libseccomp or the seccompiler crate: berth links no C library, and seccompiler
//! cannot express SCMP_ACT_NOTIFY (nor LOG, KILL_PROCESS or the x86/x32 handling below).

pub mod arch;
pub mod bpf;
pub mod codegen;
pub mod load;
pub mod notify;
pub mod profile;
mod tables;

#[cfg(test)]
mod interp;
#[cfg(test)]
mod tests;

use oci_spec::runtime::LinuxSeccomp;

use crate::error::Result;
pub use notify::Container;

/// A compiled filter, ready to load.
pub struct Filter {
    prog: Vec<bpf::Insn>,
    flags: u32,
    agent: Option<notify::Agent>,
}

impl Filter {
    /// The socket to the seccomp agent, which must stay open until [`load`].
    pub fn agent_fd(&self) -> Option<std::os::fd::RawFd> {
        self.agent.as_ref().map(notify::Agent::fd)
    }
}

/// The BPF program for a profile, and the flags for seccomp(2).
pub fn build(profile: &LinuxSeccomp) -> Result<(Vec<bpf::Insn>, u32)> {
    let plan = profile::plan(profile)?;
    let prog = codegen::compile(&plan).map_err(|e| e.context("config.json linux.seccomp"))?;
    Ok((prog, plan.flags))
}

/// Compile the profile. Runs in the init before pivot_root: with SCMP_ACT_NOTIFY it
/// connects to the agent at listenerPath, a host path.
pub fn compile(profile: &LinuxSeccomp, c: &Container) -> Result<Filter> {
    let (prog, flags) = build(profile)?;
    let agent = match profile.listener_path() {
        Some(path) if flags & profile::FLAG_NEW_LISTENER != 0 => Some(notify::connect(
            path,
            profile.listener_metadata().as_deref(),
            c,
        )?),
        _ => None,
    };
    Ok(Filter { prog, flags, agent })
}

/// Load the filter into the calling thread, and hand the notify fd to the agent. The
/// caller holds CAP_SYS_ADMIN or has set no_new_privs; nothing but capability calls,
/// prctl and execve follow.
pub fn load(f: &Filter) -> Result<()> {
    let listener = load::load(&f.prog, f.flags)?;
    if let (Some(agent), Some(fd)) = (&f.agent, &listener) {
        use std::os::fd::AsRawFd;
        agent.send(fd.as_raw_fd())?;
    }
    // Our copy of the notify fd closes at exec (the kernel makes it close-on-exec); it is
    // not closed here, so no close(2) runs under the filter.
    std::mem::forget(listener);
    Ok(())
}

/// linux.seccomp of `berth features`, from the same tables and flags the compiler uses.
pub fn features() -> serde_json::Value {
    let supported: Vec<&str> = load::KNOWN_FLAGS
        .iter()
        .filter(|(_, bit)| load::kernel_supports(*bit))
        .map(|(n, _)| *n)
        .collect();
    serde_json::json!({
        "enabled": true,
        "actions": [
            "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ],
        "operators": [
            "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
        ],
        "archs": arch::ALL.iter().map(|a| a.name()).collect::<Vec<_>>(),
        "knownFlags": load::KNOWN_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported,
    })
}
