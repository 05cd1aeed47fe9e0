//! A `cgroup` entry of `mounts[]`.
//!
//! On a pure v2 host it is a `cgroup2` mount. On v1 and hybrid hosts it is a tmpfs holding,
//! for each hierarchy the host mounts under `/sys/fs/cgroup`, a bind of the container's own
//! cgroup in that hierarchy: the container sees its cgroup, not the host's tree.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::path::{Kind, Root, fd_path};
use crate::error::{Context, Result};

const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Super options of a v1 cgroup mount that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "none",
];

pub fn mount(root: &Root, dest: &Path, flags: MsFlags) -> Result<()> {
    let target = root.create(dest, Kind::Dir, 0o755)?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let hierarchies = host_hierarchies(&mountinfo);
    if hierarchies.is_empty() {
        return mount_cgroup2(&target, flags);
    }
    let data = "mode=755";
    let base = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    nix::mount::mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        base,
        Some(data),
    )
    .ctx("mount a tmpfs for the cgroup hierarchies")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ctx("read /proc/self/cgroup")?;
    for h in &hierarchies {
        let Some(rel) = own_path(&own, h) else {
            continue;
        };
        let src = Path::new(HOST_CGROUP_ROOT)
            .join(&h.dir)
            .join(rel.strip_prefix("/").unwrap_or(&rel));
        let sub = dest.join(&h.dir);
        let t = root.create(&sub, Kind::Dir, 0o755)?;
        nix::mount::mount(
            Some(&src),
            &fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(|| format!("bind {}", src.display()))?;
        let top = root.resolve(&sub)?;
        super::remount(
            &top,
            flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .with_ctx(|| format!("remount {}", sub.display()))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = root.resolve(dest)?;
        super::remount(&top, flags).ctx("remount the cgroup tmpfs read-only")?;
    }
    Ok(())
}

fn mount_cgroup2(target: &std::os::fd::OwnedFd, flags: MsFlags) -> Result<()> {
    nix::mount::mount(
        Some("cgroup2"),
        &fd_path(target),
        Some("cgroup2"),
        flags,
        None::<&str>,
    )
    .ctx("mount cgroup2")
}

/// A cgroup hierarchy mounted at `/sys/fs/cgroup/<dir>`.
#[derive(Debug, PartialEq)]
struct Hierarchy {
    dir: String,
    /// `cpu`, `memory`, `name=systemd`, …; empty for the v2 hierarchy.
    controllers: Vec<String>,
    v2: bool,
}

/// Hierarchies mounted directly below /sys/fs/cgroup; empty on a pure v2 host.
fn host_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mp = pre.split(' ').nth(4).unwrap_or("");
        let Some(dir) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if dir.contains('/') {
            continue;
        }
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let superopts = post.nth(1).unwrap_or("");
        let v2 = match fstype {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            superopts
                .split(',')
                .filter(|o| {
                    !NOT_CONTROLLERS.contains(o) && (o.starts_with("name=") || !o.contains('='))
                })
                .map(str::to_string)
                .collect()
        };
        out.push(Hierarchy {
            dir: dir.to_string(),
            controllers,
            v2,
        });
    }
    out
}

/// This process's cgroup in hierarchy `h`, from /proc/self/cgroup.
fn own_path(proc_cgroup: &str, h: &Hierarchy) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct";

    #[test]
    fn finds_hybrid_hierarchies() {
        let h = host_hierarchies(MOUNTINFO);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].controllers, vec!["cpu"]);
        assert_eq!(h[1].controllers, vec!["name=systemd"]);
        assert!(h[2].v2);
        assert_eq!(h[3].dir, "cpu,cpuacct");
    }

    #[test]
    fn pure_v2_has_none() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        assert!(host_hierarchies(mi).is_empty());
    }

    #[test]
    fn own_path_matches_controller_sets() {
        let pc = "12:cpuacct,cpu:/a\n1:name=systemd:/s\n0::/u\n";
        let h = host_hierarchies(MOUNTINFO);
        assert_eq!(own_path(pc, &h[3]), Some(PathBuf::from("/a")));
        assert_eq!(own_path(pc, &h[2]), Some(PathBuf::from("/u")));
        assert_eq!(own_path(pc, &h[0]), None);
    }
}
