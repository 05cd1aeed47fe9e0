//! Helpers for the rootfs tests: reading mountinfo as the container printed it, editing
//! configs, and watching host paths that a hostile image aims at.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// One line of mountinfo, with the fields the rootfs tests look at.
#[derive(Debug, Clone)]
pub struct Mnt {
    pub root: String,
    pub point: String,
    /// Per-mount options (`ro`, `nosuid`, `relatime`, …).
    pub opts: Vec<String>,
    /// Optional fields (`shared:N`, `master:N`).
    pub tags: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Superblock options (`size=…`, `mode=…`).
    pub sb: Vec<String>,
}

impl Mnt {
    pub fn has(&self, o: &str) -> bool {
        self.opts.iter().any(|x| x == o)
    }

    pub fn sb_has(&self, o: &str) -> bool {
        self.sb.iter().any(|x| x == o)
    }
}

pub fn mountinfo(text: &str) -> Vec<Mnt> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let p: Vec<&str> = post.split(' ').collect();
            if f.len() < 6 || p.len() < 3 {
                return None;
            }
            Some(Mnt {
                root: f[3].to_string(),
                point: f[4].to_string(),
                opts: f[5].split(',').map(str::to_string).collect(),
                tags: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: p[0].to_string(),
                source: p[1].to_string(),
                sb: p[2].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The visible (last) mount at `point`.
pub fn at<'a>(mounts: &'a [Mnt], point: &str) -> Option<&'a Mnt> {
    mounts.iter().rev().find(|m| m.point == point)
}

/// The visible mount at `point`, or a failed test showing `ctx`.
pub fn must<'a>(mounts: &'a [Mnt], point: &str, ctx: &dyn std::fmt::Display) -> &'a Mnt {
    at(mounts, point).unwrap_or_else(|| panic!("no mount at {point}\n{ctx}"))
}

/// Give the process more capabilities in every set.
pub fn add_caps(c: &mut Value, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
        for cap in caps {
            list.push(json!(cap));
        }
    }
}

/// Drop the mounts at these destinations from the config.
pub fn drop_mounts(c: &mut Value, destinations: &[&str]) {
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !destinations.iter().any(|d| m["destination"] == *d));
}

/// A mount entry.
pub fn mount(dest: &str, typ: &str, source: impl AsRef<Path>, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": typ, "source": source.as_ref(), "options": options })
}

/// What a host path is, deep: type, mode, owner, size, times and content (for files),
/// link target (for symlinks), and the same for every entry below (for directories).
pub fn describe(p: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(m) = fs::symlink_metadata(p) else {
            out.insert(p.to_path_buf(), "absent".into());
            return;
        };
        let t = m.file_type();
        let mut d = format!(
            "mode={:o} uid={} gid={} size={} mtime={}.{} ino={}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino()
        );
        if t.is_symlink() {
            d += &format!(" -> {:?}", fs::read_link(p).unwrap());
        } else if t.is_file() {
            d += &format!(" content={:?}", fs::read(p).unwrap_or_default());
        }
        out.insert(p.to_path_buf(), d);
        if t.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            names.sort();
            for n in names {
                walk(&n, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(p, &mut out);
    out
}

/// Host paths whose state must not change: described now, compared by [`Watch::check`].
pub struct Watch {
    before: Vec<BTreeMap<PathBuf, String>>,
    paths: Vec<PathBuf>,
}

impl Watch {
    pub fn new(paths: &[&Path]) -> Watch {
        Watch {
            before: paths.iter().map(|p| describe(p)).collect(),
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    pub fn check(&self, ctx: &dyn std::fmt::Display) {
        for (p, before) in self.paths.iter().zip(&self.before) {
            let now = describe(p);
            assert_eq!(before, &now, "host path {p:?} changed\n{ctx}");
        }
    }
}

/// The lines of `text` that start with `prefix`, without it.
pub fn tagged<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

/// The one line of `text` starting with `prefix`, without it.
pub fn tag<'a>(text: &'a str, prefix: &str, ctx: &dyn std::fmt::Display) -> &'a str {
    let v = tagged(text, prefix);
    assert_eq!(v.len(), 1, "want one line {prefix:?}\n{ctx}");
    v[0]
}
