//! `events --stats`: runc's stats JSON (types/events.go), from v1 or v2 files.

use std::path::Path;

use serde_json::{Value, json};

use super::fs::{self, keyed, read_keyed, read_u64};
use super::v1::V1;

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

/// runc's stats from the v1 hierarchies.
pub fn v1(v: &V1) -> Value {
    let mut s = empty();
    if let Some(d) = v.dir("cpuacct") {
        let tick = ns_per_tick();
        let st = read_keyed(d, "cpuacct.stat");
        s["cpu"]["usage"] = json!({
            "total": read_u64(d, "cpuacct.usage").unwrap_or(0),
            "percpu": fs::read(d, "cpuacct.usage_percpu").unwrap_or_default()
                .split_whitespace().filter_map(|v| v.parse::<u64>().ok()).collect::<Vec<_>>(),
            "kernel": keyed(&st, "system").unwrap_or(0) * tick,
            "user": keyed(&st, "user").unwrap_or(0) * tick,
        });
    }
    if let Some(d) = v.dir("cpu") {
        let st = read_keyed(d, "cpu.stat");
        s["cpu"]["throttling"] = json!({
            "periods": keyed(&st, "nr_periods").unwrap_or(0),
            "throttled_periods": keyed(&st, "nr_throttled").unwrap_or(0),
            "throttled_time": keyed(&st, "throttled_time").unwrap_or(0),
        });
    }
    if let Some(d) = v.dir("memory") {
        let entry = |p: &str| {
            json!({
                "limit": read_u64(d, &format!("{p}limit_in_bytes")).unwrap_or(0),
                "usage": read_u64(d, &format!("{p}usage_in_bytes")).unwrap_or(0),
                "max": read_u64(d, &format!("{p}max_usage_in_bytes")).unwrap_or(0),
                "failcnt": read_u64(d, &format!("{p}failcnt")).unwrap_or(0),
            })
        };
        let raw: serde_json::Map<String, Value> = read_keyed(d, "memory.stat")
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        s["memory"] = json!({
            "cache": raw.get("cache").cloned().unwrap_or(json!(0)),
            "usage": entry("memory."),
            "swap": entry("memory.memsw."),
            "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."),
            "raw": raw,
        });
    }
    if let Some(d) = v.dir("pids") {
        s["pids"] = json!({
            "current": read_u64(d, "pids.current").unwrap_or(0),
            "limit": read_u64(d, "pids.max").unwrap_or(0),
        });
    }
    if let Some(d) = v.dir("blkio") {
        let mut blkio = serde_json::Map::new();
        for (key, file, alt) in [
            (
                "ioServiceBytesRecursive",
                "blkio.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ),
            (
                "ioServicedRecursive",
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ),
        ] {
            let text = fs::read(d, file)
                .or_else(|_| fs::read(d, alt))
                .unwrap_or_default();
            let list = blkio_v1(&text);
            if !list.is_empty() {
                blkio.insert(key.into(), json!(list));
            }
        }
        s["blkio"] = Value::Object(blkio);
    }
    if let Some(d) = v.dir("hugetlb") {
        for size in hugepage_sizes() {
            let p = format!("hugetlb.{size}.");
            if let Some(u) = read_u64(d, &format!("{p}usage_in_bytes")) {
                s["hugetlb"][&size] = json!({
                    "usage": u,
                    "max": read_u64(d, &format!("{p}max_usage_in_bytes")).unwrap_or(0),
                    "failcnt": read_u64(d, &format!("{p}failcnt")).unwrap_or(0),
                });
            }
        }
    }
    s
}

/// runc's stats from a v2 cgroup, in v1's terms as runc gives them.
pub fn v2(d: &Path) -> Value {
    let mut s = empty();
    let cpu = read_keyed(d, "cpu.stat");
    let us = |k: &str| keyed(&cpu, k).unwrap_or(0) * 1000;
    s["cpu"] = json!({
        "usage": { "total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec") },
        "throttling": {
            "periods": keyed(&cpu, "nr_periods").unwrap_or(0),
            "throttled_periods": keyed(&cpu, "nr_throttled").unwrap_or(0),
            "throttled_time": us("throttled_usec"),
        }
    });
    let raw: serde_json::Map<String, Value> = read_keyed(d, "memory.stat")
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let max = |f: &str| read_u64(d, f).unwrap_or(u64::MAX);
    let events = read_keyed(d, "memory.events");
    let usage = read_u64(d, "memory.current").unwrap_or(0);
    let swap = read_u64(d, "memory.swap.current").unwrap_or(0);
    s["memory"] = json!({
        "cache": raw.get("file").cloned().unwrap_or(json!(0)),
        "usage": {
            "limit": max("memory.max"),
            "usage": usage,
            "max": read_u64(d, "memory.peak").unwrap_or(0),
            "failcnt": keyed(&events, "max").unwrap_or(0),
        },
        // As runc: v1's memory+swap view.
        "swap": { "limit": max("memory.swap.max"), "usage": usage + swap, "failcnt": 0 },
        "raw": raw,
    });
    s["pids"] = json!({
        "current": read_u64(d, "pids.current").unwrap_or(0),
        "limit": read_u64(d, "pids.max").unwrap_or(0),
    });
    let (bytes, ios) = io_stat_v2(&fs::read(d, "io.stat").unwrap_or_default());
    let mut blkio = serde_json::Map::new();
    if !bytes.is_empty() {
        blkio.insert("ioServiceBytesRecursive".into(), json!(bytes));
        blkio.insert("ioServicedRecursive".into(), json!(ios));
    }
    s["blkio"] = Value::Object(blkio);
    for size in hugepage_sizes() {
        if let Some(u) = read_u64(d, &format!("hugetlb.{size}.current")) {
            let ev = read_keyed(d, &format!("hugetlb.{size}.events"));
            s["hugetlb"][&size] = json!({
                "usage": u,
                "max": read_u64(d, &format!("hugetlb.{size}.max")).unwrap_or(0),
                "failcnt": keyed(&ev, "max").unwrap_or(0),
            });
        }
    }
    s
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
