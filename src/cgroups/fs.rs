//! Reading and writing cgroup files, each write named after the config field it is for.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::err;
use crate::error::{Context, Result};

/// Write `value` into `dir/file` for `field`. A file the host lacks is named as such:
/// `config.json linux.resources.blockIO.weight: /sys/fs/cgroup/blkio/x/blkio.weight does
/// not exist on this host`.
pub fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let p = dir.join(file);
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(err!("{field}: {} does not exist on this host", p.display()))
        }
        Err(e) => Err(e).with_ctx(|| format!("{field}: write {value:?} to {}", p.display())),
    }
}

/// The file's content, trimmed.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .with_ctx(|| format!("read {}", p.display()))
}

/// A number, or `None` when the file is missing, unreadable or "max".
pub fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file).ok()?.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, …).
pub fn read_keyed(dir: &Path, file: &str) -> Vec<(String, u64)> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

pub fn keyed(list: &[(String, u64)], key: &str) -> Option<u64> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// `mkdir -p`, appending to `made` each directory this call created (parents first). A
/// parent removed meanwhile by the `delete` of another container is made again.
pub fn mkdir_all(dir: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    // The usual case first: the parent exists, one mkdir and no lookups.
    match std::fs::create_dir(dir) {
        Ok(()) => {
            made.push(dir.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(_) => {}
    }
    let mut tries = 0;
    loop {
        let mut missing = Vec::new();
        let mut p = dir;
        while !p.exists() {
            missing.push(p.to_path_buf());
            p = match p.parent() {
                Some(q) => q,
                None => break,
            };
        }
        let mut vanished = false;
        for d in missing.into_iter().rev() {
            match std::fs::create_dir(&d) {
                Ok(()) => made.push(d),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 10 => {
                    vanished = true;
                    break;
                }
                Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", d.display())),
            }
        }
        if !vanished {
            return Ok(());
        }
        tries += 1;
    }
}

/// Pids listed in `dir/cgroup.procs` and in every cgroup below it.
pub fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let text = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_ctx(|| format!("read {}/cgroup.procs", dir.display())),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out)?;
            }
        }
    }
    Ok(())
}
