//! `events`: runc's stats JSON (types/events.go), and the OOM watch.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Context, Result};

/// The stats object with every section runc prints.
pub fn empty() -> Value {
    json!({
        "cpu": { "usage": { "kernel": 0, "user": 0 }, "throttling": {} },
        "cpuset": {},
        "memory": {},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": null
    })
}

/// Nanoseconds in one USER_HZ tick (cpuacct.stat counts ticks).
pub fn ns_per_tick() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// Huge page sizes as the hugetlb files name them: `2MB`, `1GB`.
pub fn hugepage_sizes() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().into_string().ok()?;
                    let kb: u64 = n
                        .strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()?;
                    Some(size_name(kb * 1024))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn size_name(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024 && v.is_multiple_of(1024) && i < units.len() - 1 {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", units[i])
}

/// `8:0 Read 1234` lines of a v1 blkio file.
pub fn blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, v] = f[..] else { return None };
            let (ma, mi) = dev.split_once(':')?;
            Some(json!({
                "major": ma.parse::<u64>().ok()?, "minor": mi.parse::<u64>().ok()?,
                "op": op, "value": v.parse::<u64>().ok()?
            }))
        })
        .collect()
}

/// v2's io.stat as runc reports it: (service bytes, serviced) entries, op Read/Write.
pub fn io_stat_v2(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let e = |op: &str| json!({ "major": ma, "minor": mi, "op": op, "value": v });
            match k {
                "rbytes" => bytes.push(e("Read")),
                "wbytes" => bytes.push(e("Write")),
                "rios" => ios.push(e("Read")),
                "wios" => ios.push(e("Write")),
                _ => {}
            }
        }
    }
    (bytes, ios)
}

/// Something to poll for OOM events: an eventfd on v1 (memory.oom_control), an inotify
/// watch of memory.events on v2.
pub struct OomWatch {
    fd: OwnedFd,
    /// v1: the memory.oom_control the eventfd is registered for (kept open).
    _oom_control: Option<std::fs::File>,
    /// v2: memory.events and the oom_kill count last seen.
    events: Option<(PathBuf, u64)>,
}

fn oom_kills(events: &Path) -> u64 {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        .unwrap_or(0)
}

impl OomWatch {
    pub fn eventfd(fd: OwnedFd, oom_control: std::fs::File) -> OomWatch {
        OomWatch {
            fd,
            _oom_control: Some(oom_control),
            events: None,
        }
    }

    pub fn inotify(events: &Path) -> Result<OomWatch> {
        // SAFETY: inotify_init1 with flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(nix::errno::Errno::last()).ctx("inotify_init1");
        }
        // SAFETY: the kernel just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let p = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|_| crate::err!("NUL in path"))?;
        // SAFETY: a NUL-terminated path that outlives the call, on our inotify fd.
        let w = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) };
        if w < 0 {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("inotify_add_watch {}", events.display()));
        }
        Ok(OomWatch {
            fd,
            _oom_control: None,
            events: Some((events.to_path_buf(), oom_kills(events))),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// After the fd polled readable: drain it; true when an OOM happened.
    pub fn fired(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let n = match self.fd.try_clone() {
            Ok(fd) => std::fs::File::from(fd).read(&mut buf).unwrap_or(0),
            Err(_) => 0,
        };
        match &mut self.events {
            None => n == 8,
            Some((path, last)) => {
                let now = oom_kills(path);
                let hit = now > *last;
                *last = now;
                hit
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkio_and_io_stat() {
        let v1 = blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[0]["op"], "Read");
        let (b, i) = io_stat_v2("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 2);
        assert_eq!(i[1]["value"], 2);
        assert_eq!(size_name(2 * 1024 * 1024), "2MB");
        assert_eq!(size_name(1 << 30), "1GB");
    }
}
