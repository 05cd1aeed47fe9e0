//! Where the container's cgroup is: `linux.cgroupsPath` resolved for each hierarchy.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Mode, ROOT, check_inside};
use crate::err;
use crate::error::{Context, Result};

static SYSTEMD: AtomicBool = AtomicBool::new(false);

/// `--systemd-cgroup`: read cgroupsPath as `slice:prefix:name`.
pub fn set_systemd(on: bool) {
    SYSTEMD.store(on, Ordering::Relaxed);
}

const FIELD: &str = "config.json linux.cgroupsPath";

/// The path below each hierarchy's root (absolute), or below the caller's own cgroup
/// (relative), for `cgroupsPath`.
fn inner(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let p = match cgroups_path {
        _ if SYSTEMD.load(Ordering::Relaxed) => {
            let s = cgroups_path
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let s = if s.is_empty() {
                format!("system.slice:berth:{id}")
            } else {
                s
            };
            systemd_path(&s)?
        }
        None => PathBuf::from("/berth").join(id),
        Some(p) if p.as_os_str().is_empty() => PathBuf::from("/berth").join(id),
        Some(p) => p.to_path_buf(),
    };
    check_inside(&p, FIELD)?;
    Ok(p)
}

/// The cgroupfs path systemd makes for `slice:prefix:name`: the slice expanded into its
/// parents (`a-b.slice` → `/a.slice/a-b.slice`), then `<prefix>-<name>.scope`.
fn systemd_path(s: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = s.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(err!(
            "{FIELD}: {s:?}: with --systemd-cgroup it must be \"slice:prefix:name\""
        ));
    };
    let mut p = PathBuf::from("/");
    if !slice.is_empty() && slice != "-.slice" {
        let base = slice
            .strip_suffix(".slice")
            .ok_or_else(|| err!("{FIELD}: {slice:?} is not a .slice"))?;
        if base.contains('/') || base.starts_with('-') || base.ends_with('-') {
            return Err(err!("{FIELD}: {slice:?} is not a valid slice name"));
        }
        let mut acc = String::new();
        for part in base.split('-') {
            if part.is_empty() {
                return Err(err!("{FIELD}: {slice:?} is not a valid slice name"));
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            p.push(format!("{acc}.slice"));
        }
    }
    if name.contains('/') || prefix.contains('/') {
        return Err(err!("{FIELD}: {s:?}: prefix and name must not contain '/'"));
    }
    if name.ends_with(".slice") {
        p.push(name);
    } else if prefix.is_empty() {
        p.push(format!("{name}.scope"));
    } else {
        p.push(format!("{prefix}-{name}.scope"));
    }
    Ok(p)
}

/// This process's cgroup in the hierarchy whose /proc/self/cgroup controller list is
/// `ctrls` (empty: the v2 one).
fn own(proc_cgroup: &str, want: &[String], v2: bool) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if v2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = want.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        if hit {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn join(base: &Path, rel: &Path) -> PathBuf {
    base.join(rel.strip_prefix("/").unwrap_or(rel))
}

/// The container's cgroup directory in each hierarchy of `mode`.
pub fn dirs(mode: &Mode, cgroups_path: Option<&Path>, id: &str) -> Result<Vec<PathBuf>> {
    let p = inner(cgroups_path, id)?;
    let relative = p.is_relative();
    let proc_cgroup = if relative {
        std::fs::read_to_string("/proc/self/cgroup").ctx("read /proc/self/cgroup")?
    } else {
        String::new()
    };
    let mut out = Vec::new();
    match mode {
        Mode::V2 => {
            let base = if relative {
                // runc's choice: berth's own cgroup holds processes, so it cannot
                // delegate controllers to a child; its parent can.
                let o = own(&proc_cgroup, &[], true)
                    .ok_or_else(|| err!("{FIELD}: berth's own cgroup not found"))?;
                o.parent().map(Path::to_path_buf).unwrap_or(o)
            } else {
                PathBuf::from("/")
            };
            out.push(join(&join(Path::new(ROOT), &base), &p));
        }
        Mode::V1(hs) => {
            for h in hs {
                let base = if relative {
                    own(&proc_cgroup, &h.controllers, h.v2).unwrap_or_else(|| "/".into())
                } else {
                    PathBuf::from("/")
                };
                out.push(join(&join(&h.mount, &base), &p));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Hierarchy;

    #[test]
    fn systemd_paths_expand_slices() {
        assert_eq!(
            systemd_path("system.slice:docker:abc").unwrap(),
            PathBuf::from("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            systemd_path("kubepods-besteffort-pod1.slice:cri:x").unwrap(),
            PathBuf::from(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-x.scope"
            )
        );
        assert_eq!(
            systemd_path(":berth:x").unwrap(),
            PathBuf::from("/berth-x.scope")
        );
        assert!(systemd_path("/a/b").is_err());
        assert!(systemd_path("a--b.slice:p:n").is_err());
    }

    #[test]
    fn absolute_relative_and_default() {
        let hs = vec![
            Hierarchy {
                mount: "/sys/fs/cgroup/memory".into(),
                controllers: vec!["memory".into()],
                v2: false,
            },
            Hierarchy {
                mount: "/sys/fs/cgroup/unified".into(),
                controllers: vec![],
                v2: true,
            },
        ];
        let m = Mode::V1(hs);
        assert_eq!(
            dirs(&m, None, "c1").unwrap(),
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/berth/c1"),
                PathBuf::from("/sys/fs/cgroup/unified/berth/c1")
            ]
        );
        assert_eq!(
            dirs(&Mode::V2, Some(Path::new("/a/b")), "c1").unwrap(),
            vec![PathBuf::from("/sys/fs/cgroup/a/b")]
        );
        assert!(
            dirs(&Mode::V2, Some(Path::new("/a/../../etc")), "c1")
                .unwrap_err()
                .to_string()
                .contains("'..'")
        );
        let pc = "4:memory:/m/own\n0::/u/own\n";
        assert_eq!(
            own(pc, &["memory".into()], false),
            Some(PathBuf::from("/m/own"))
        );
        assert_eq!(own(pc, &[], true), Some(PathBuf::from("/u/own")));
    }
}
