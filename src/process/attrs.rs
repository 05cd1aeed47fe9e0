//! The smaller process attributes: personality, ioPriority, scheduler, execCPUAffinity,
//! linux.memoryPolicy, and the checks for what this host cannot do (AppArmor, SELinux,
//! Intel RDT), made before anything is created.

use std::path::Path;

use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler, Spec,
};

use crate::err;
use crate::error::{Context, Result};
use crate::procfs::ProcFs;

fn lsm_enabled(name: &str) -> bool {
    match name {
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y"),
        _ => Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

/// What the host must offer for this config, checked in `create` before the init exists.
/// What the host must offer for a process (also `exec --process` and exec's flags).
pub fn check_process(p: &Process) -> Result<()> {
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !lsm_enabled("apparmor")
    {
        return Err(err!(
            "config.json process.apparmorProfile: AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled is not Y)"
        ));
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) && !lsm_enabled("selinux") {
        return Err(err!(
            "config.json process.selinuxLabel: SELinux is not enabled on this host (no /sys/fs/selinux)"
        ));
    }
    if let Some(a) = p.exec_cpu_affinity() {
        for (name, v) in [("initial", a.initial()), ("final", a.cpu_affinity_final())] {
            if let Some(list) = v {
                parse_list(list)
                    .with_ctx(|| format!("config.json process.execCPUAffinity.{name}"))?;
            }
        }
    }
    Ok(())
}

pub fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            let mounted = nix::sys::statfs::statfs("/sys/fs/resctrl")
                .is_ok_and(|s| s.filesystem_type().0 == 0x7655821);
            return Err(if mounted {
                err!("config.json linux.intelRdt: not supported by berth yet")
            } else {
                err!(
                    "config.json linux.intelRdt: resctrl is not mounted at /sys/fs/resctrl on this host"
                )
            });
        }
        if l.personality()
            .as_ref()
            .and_then(|p| p.flags().as_deref())
            .is_some_and(|f| !f.is_empty())
        {
            return Err(err!(
                "config.json linux.personality.flags: no flag is defined by the spec"
            ));
        }
        if let Some(m) = l.memory_policy() {
            nodemask(m).ctx("config.json linux.memoryPolicy.nodes")?;
        }
    }
    Ok(())
}

/// LSM labels for the user program, written to /proc/self/attr/exec (applied at execve).
pub fn set_lsm_labels(p: &Process, proc: &ProcFs) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        proc.write(
            "self/attr/apparmor/exec",
            format!("exec {profile}").as_bytes(),
        )
        .ctx("config.json process.apparmorProfile")?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        proc.write("self/attr/exec", label.as_bytes())
            .ctx("config.json process.selinuxLabel")?;
    }
    Ok(())
}

pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes one integer.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(nix::errno::Errno::last()).ctx("config.json linux.personality: personality");
    }
    Ok(())
}

pub fn set_io_priority(class: IOPriorityClass, priority: i64) -> Result<()> {
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&priority) {
        return Err(err!(
            "config.json process.ioPriority.priority: {priority}, must be 0 to 7"
        ));
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = (class << 13) | priority;
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx("config.json process.ioPriority: ioprio_set")
}

/// The kernel's `struct sched_attr`.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr reads one initialised sched_attr of the size it is told.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx("config.json process.scheduler: sched_setattr")
}

/// `0-3,7` → [0, 1, 2, 3, 7].
fn parse_list(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| err!("{s:?}: bad number {a:?}"))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| err!("{s:?}: bad number {b:?}"))?;
        if a > b || b >= 4096 {
            return Err(err!("{s:?}: bad range {part:?}"));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

pub fn set_cpu_affinity(list: &str, field: &str) -> Result<()> {
    let cpus = parse_list(list).ctx(field.to_string())?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c).map_err(|e| err!("{field}: cpu {c}: {e}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_ctx(|| format!("{field}: sched_setaffinity"))
}

fn nodemask(m: &LinuxMemoryPolicy) -> Result<Vec<u64>> {
    let nodes = parse_list(m.nodes().as_deref().unwrap_or(""))?;
    let mut mask = vec![0u64; 16];
    for n in nodes {
        if n >= mask.len() * 64 {
            return Err(err!("node {n} out of range"));
        }
        mask[n / 64] |= 1 << (n % 64);
    }
    Ok(mask)
}

pub fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<()> {
    let mode: i32 = match m.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0i32;
    for f in m.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let mask = nodemask(m).ctx("config.json linux.memoryPolicy.nodes")?;
    let empty = mask.iter().all(|w| *w == 0);
    let (ptr, maxnode) = if empty {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() * 64)
    };
    // SAFETY: set_mempolicy reads maxnode bits from a live buffer (or none).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx("config.json linux.memoryPolicy: set_mempolicy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list(" 2 ").unwrap(), vec![2]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("a").is_err());
        assert!(parse_list("0-99999").is_err());
    }

    #[test]
    fn host_without_lsm_refuses_labels() {
        let mut v = crate::spec::default_config();
        v["process"]["apparmorProfile"] = serde_json::json!("docker-default");
        let s: Spec = serde_json::from_value(v).unwrap();
        let r = check(&s);
        if !lsm_enabled("apparmor") {
            assert!(
                r.unwrap_err()
                    .to_string()
                    .contains("AppArmor is not enabled")
            );
        }
    }
}
