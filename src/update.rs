//! `berth update`: change a container's cgroup limits, from runc's flags or from
//! `--resources FILE` (`-`: stdin) holding runtime-spec `linux.resources` JSON, where a 0
//! means "unset" (Docker sends every field). Flags override the JSON. As runc, devices
//! are not updated.

use std::io::Read;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cgroups::{self, Apply};
use crate::cli::UpdateArgs;
use crate::container::{Status, Store};
use crate::err;
use crate::error::{Context, Result};

pub fn update(store: &Store, a: &UpdateArgs) -> Result<()> {
    let r = resources(a)?;
    let c = store.open(&a.id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {} is still being created", a.id))?;
    match c.status(Some(&st)) {
        Status::Created | Status::Running | Status::Paused => {}
        _ => return Err(err!("cannot update container {}: it is not running", a.id)),
    }
    let cg = cgroups::of(&st)?.ok_or_else(|| err!("container {} has no cgroup to update", a.id))?;
    cg.driver().apply(
        &r,
        Apply {
            origin: "update: linux.resources",
            fresh: false,
            update: true,
        },
    )
}

/// The resources asked for: the JSON, then each flag given.
fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: LinuxResources = match a.resources.as_deref() {
        None => LinuxResources::default(),
        Some(src) => {
            let text = if src == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .ctx("--resources -: read stdin")?;
                s
            } else {
                std::fs::read_to_string(src).with_ctx(|| format!("--resources {src}"))?
            };
            crate::jsonpath::from_slice(text.as_bytes())
                .map_err(|(path, e)| err!("--resources {src}: {path}: {e}"))?
        }
    };
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        log::warn!("update: linux.resources.devices cannot be updated, ignored (as runc)");
        r.set_devices(None);
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(err!(
            "update: --l3-cache-schema and --mem-bw-schema need Intel RDT, which berth does not support"
        ));
    }
    let mut mem = r.memory().unwrap_or_default();
    for (flag, val, set) in [
        (
            "--memory",
            &a.memory,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (
            "--memory-reservation",
            &a.memory_reservation,
            LinuxMemory::set_reservation,
        ),
        ("--memory-swap", &a.memory_swap, LinuxMemory::set_swap),
        (
            "--kernel-memory-tcp",
            &a.kernel_memory_tcp,
            LinuxMemory::set_kernel_tcp,
        ),
    ] {
        if let Some(v) = val {
            set(
                &mut mem,
                Some(parse_bytes(v).map_err(|e| err!("update {flag}: {e}"))?),
            );
        }
    }
    if let Some(v) = &a.kernel_memory {
        parse_bytes(v).map_err(|e| err!("update --kernel-memory: {e}"))?;
        log::warn!("update --kernel-memory: kernel memory limits are deprecated and ignored");
    }
    if mem != LinuxMemory::default() {
        r.set_memory(Some(mem));
    }
    let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
    if a.cpu_share.is_some() {
        cpu.set_shares(a.cpu_share);
    }
    if a.cpu_period.is_some() {
        cpu.set_period(a.cpu_period);
    }
    if a.cpu_quota.is_some() {
        cpu.set_quota(a.cpu_quota);
    }
    if a.cpu_burst.is_some() {
        cpu.set_burst(a.cpu_burst);
    }
    if a.cpu_rt_period.is_some() {
        cpu.set_realtime_period(a.cpu_rt_period);
    }
    if a.cpu_rt_runtime.is_some() {
        cpu.set_realtime_runtime(a.cpu_rt_runtime);
    }
    if a.cpuset_cpus.is_some() {
        cpu.set_cpus(a.cpuset_cpus.clone());
    }
    if a.cpuset_mems.is_some() {
        cpu.set_mems(a.cpuset_mems.clone());
    }
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(l) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// `512`, `100k`, `64m`, `1g`, `1t` (powers of 1024, an optional trailing `b`), or `-1`.
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (such as 512, 100k, 64m, 1g, or -1)"))?;
    if n < 0.0 {
        return Err(format!(
            "{s:?}: a size cannot be negative (-1 is unlimited)"
        ));
    }
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("100k").unwrap(), 102_400);
        assert_eq!(parse_bytes("64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-5").is_err());
    }

    #[test]
    fn docker_json_and_flags() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            pids_limit: Some(20),
            cpu_share: Some(512),
            id: "c".into(),
            ..Default::default()
        };
        let r = resources(&a).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().unwrap().limit(), 20);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        assert!(r.block_io().is_none());
    }
}
