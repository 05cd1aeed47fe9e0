//! `berth events`: runc's event stream, one JSON object a line: `{"type":"stats","id":…,
//! "data":{cpu, memory, pids, blkio, hugetlb, …}}` every `--interval`, and
//! `{"type":"oom","id":…}` when the kernel's OOM killer acts in the container (v1: an
//! eventfd on memory.oom_control; v2: memory.events' oom_kill count). `--stats` prints the
//! statistics once. The stream ends when the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::json;

use crate::cgroups;
use crate::cli::EventsArgs;
use crate::container::{Status, Store};
use crate::err;
use crate::error::{Context, Result};

pub fn events(store: &Store, a: &EventsArgs) -> Result<()> {
    let c = store.peek(&a.id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {} is still being created", a.id))?;
    if c.status(Some(&st)) == Status::Stopped {
        return Err(err!("container {} is not running", a.id));
    }
    let cg = cgroups::of(&st)?.ok_or_else(|| err!("container {} has no cgroup", a.id))?;
    let emit = |v: serde_json::Value| -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}")
            .and_then(|_| out.flush())
            .ctx("write to stdout")
    };
    let stats = || -> Result<serde_json::Value> {
        Ok(json!({ "type": "stats", "id": a.id, "data": cg.driver().stats()? }))
    };
    if a.stats {
        return emit(stats()?);
    }
    let interval = parse_duration(&a.interval)?;
    // No memory controller: stats only.
    let mut oom = cg.driver().oom_watch().ok();
    let mut next = Instant::now() + interval;
    loop {
        let left = next.saturating_duration_since(Instant::now());
        // Wake at least once a second to notice a stopped container.
        let wait = left.min(Duration::from_secs(1));
        let ms = PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::MAX);
        let fired = match &oom {
            Some(w) => {
                let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
                match poll(&mut fds, ms) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => return Err(e).ctx("poll"),
                }
            }
            None => {
                std::thread::sleep(wait);
                false
            }
        };
        if fired && oom.as_mut().is_some_and(|w| w.fired()) {
            emit(json!({ "type": "oom", "id": a.id }))?;
        }
        if c.status(Some(&st)) == Status::Stopped {
            return Ok(());
        }
        if Instant::now() >= next {
            emit(stats()?)?;
            next += interval;
        }
    }
}

/// Go's duration syntax, as runc takes it: `5s`, `500ms`, `1m30s`, `1.5h`, `100us`.
fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || err!("--interval {s:?}: not a duration (such as 5s, 500ms, 1m)");
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += v * mult;
    }
    if total <= 0.0 {
        return Err(err!("--interval {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
