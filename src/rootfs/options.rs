//! `mounts[].options`: each word is a mount flag, a recursive mount attribute, a
//! propagation type, a berth extension (`tmpcopyup`, `idmap`, `ridmap`), or filesystem
//! data.
//!
//! The tables below are also what `berth features` reports as `mountOptions`, so the list
//! printed is the list implemented.

use nix::mount::MsFlags;

use super::mountapi::{MountAttr, attr};

/// Words that set (`true`) or clear (`false`) a mount flag.
pub const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("atime", false, MsFlags::MS_NOATIME),
    ("bind", true, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", false, MsFlags::MS_NODEV),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("lazytime", true, MsFlags::MS_LAZYTIME),
    // Only quiets the kernel log of a failed mount; the fd mount API reports errors on
    // the filesystem context instead, so both words are accepted and change nothing.
    ("loud", false, MsFlags::MS_SILENT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("nodev", true, MsFlags::MS_NODEV),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("nolazytime", false, MsFlags::MS_LAZYTIME),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("nosymfollow", true, NOSYMFOLLOW),
    ("rbind", true, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("silent", true, MsFlags::MS_SILENT),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("suid", false, MsFlags::MS_NOSUID),
    ("symfollow", false, NOSYMFOLLOW),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
];

const NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Propagation words: applied to the mount once it is attached.
pub const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// What a recursive attribute word does to every mount of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rec {
    Set(u64),
    Clear(u64),
    /// The access-time field takes this value (`attr::RELATIME`, `NOATIME`, `STRICTATIME`).
    Atime(u64),
}

/// Recursive attributes, set with `mount_setattr(AT_RECURSIVE)` on the mount and every
/// mount below it (plain `ro` on an `rbind` makes only the top mount read-only).
///
/// The access-time words mirror what the plain words do with mount(2), where a mount
/// asked for neither `noatime` nor `strictatime` gets the kernel's default, `relatime`.
pub const RECURSIVE: &[(&str, Rec)] = &[
    ("ratime", Rec::Atime(attr::RELATIME)),
    ("rdev", Rec::Clear(attr::NODEV)),
    ("rdiratime", Rec::Clear(attr::NODIRATIME)),
    ("rexec", Rec::Clear(attr::NOEXEC)),
    ("rnoatime", Rec::Atime(attr::NOATIME)),
    ("rnodev", Rec::Set(attr::NODEV)),
    ("rnodiratime", Rec::Set(attr::NODIRATIME)),
    ("rnoexec", Rec::Set(attr::NOEXEC)),
    ("rnorelatime", Rec::Atime(attr::RELATIME)),
    ("rnostrictatime", Rec::Atime(attr::RELATIME)),
    ("rnosuid", Rec::Set(attr::NOSUID)),
    ("rnosymfollow", Rec::Set(attr::NOSYMFOLLOW)),
    ("rrelatime", Rec::Atime(attr::RELATIME)),
    ("rro", Rec::Set(attr::RDONLY)),
    ("rrw", Rec::Clear(attr::RDONLY)),
    ("rstrictatime", Rec::Atime(attr::STRICTATIME)),
    ("rsuid", Rec::Clear(attr::NOSUID)),
    ("rsymfollow", Rec::Clear(attr::NOSYMFOLLOW)),
];

/// Words that are not mount(2) flags but ask berth for more work:
/// - `tmpcopyup`: a tmpfs starts with a copy of what the image has at its destination;
/// - `idmap` / `ridmap`: the bind mount (every mount of an rbind with `ridmap`) is
///   idmapped with the entry's `uidMappings`/`gidMappings`, or the container's.
pub const EXTENSIONS: &[&str] = &["idmap", "ridmap", "tmpcopyup"];

/// Per-mount flags the kernel keeps per mount (the rest are per superblock).
const PER_MOUNT: &[(MsFlags, u64)] = &[
    (MsFlags::MS_RDONLY, attr::RDONLY),
    (MsFlags::MS_NOSUID, attr::NOSUID),
    (MsFlags::MS_NODEV, attr::NODEV),
    (MsFlags::MS_NOEXEC, attr::NOEXEC),
    (MsFlags::MS_NODIRATIME, attr::NODIRATIME),
    (NOSYMFOLLOW, attr::NOSYMFOLLOW),
];

/// Superblock flags, with the `fsconfig` flag that sets each.
const PER_SUPERBLOCK: &[(MsFlags, &str)] = &[
    (MsFlags::MS_RDONLY, "ro"),
    (MsFlags::MS_SYNCHRONOUS, "sync"),
    (MsFlags::MS_DIRSYNC, "dirsync"),
    (MsFlags::MS_MANDLOCK, "mand"),
    (MsFlags::MS_LAZYTIME, "lazytime"),
];

const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_STRICTATIME)
    .union(MsFlags::MS_RELATIME);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idmap {
    /// `idmap`: the top mount only.
    Top,
    /// `ridmap`: every mount of the tree.
    Recursive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags asked for.
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, `exec`, `atime`, …).
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes, in the order given (later words win).
    pub recursive: Vec<Rec>,
    /// Words that are not flags, for the filesystem (`size=64k`, `mode=755`), one option
    /// each: a word holding several comma-separated options is split as mount(2) would.
    pub data: Vec<String>,
    pub tmpcopyup: bool,
    pub idmap: Option<Idmap>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: Vec::new(),
            data: Vec::new(),
            tmpcopyup: false,
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn is_rbind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    /// The access-time value the plain words ask for, if any.
    fn atime(&self) -> Option<u64> {
        if self.flags.contains(MsFlags::MS_NOATIME) {
            Some(attr::NOATIME)
        } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
            Some(attr::STRICTATIME)
        } else if self.flags.contains(MsFlags::MS_RELATIME) || self.cleared.intersects(ATIME_FLAGS)
        {
            Some(attr::RELATIME)
        } else {
            None
        }
    }

    /// The per-mount attributes of the plain words, as changes to an existing mount (a
    /// bind): what is asked is set, what is cleared is cleared, the rest is kept.
    pub fn mount_attr(&self) -> MountAttr {
        let mut a = MountAttr::default();
        for (f, m) in PER_MOUNT {
            if self.flags.contains(*f) {
                a.attr_set |= m;
            } else if self.cleared.contains(*f) {
                a.attr_clr |= m;
            }
        }
        if let Some(t) = self.atime() {
            a.attr_clr |= attr::ATIME_MASK;
            a.attr_set |= t;
        }
        a
    }

    /// The per-mount attributes of a new mount, for `fsmount`.
    pub fn fsmount_attr(&self) -> u64 {
        let a = self.mount_attr();
        a.attr_set
    }

    /// `fsconfig` flags for the superblock of a new filesystem.
    pub fn superblock_flags(&self) -> Vec<&'static str> {
        PER_SUPERBLOCK
            .iter()
            .filter(|(f, _)| self.flags.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }

    /// The recursive attributes, merged in order.
    pub fn recursive_attr(&self) -> MountAttr {
        let mut a = MountAttr::default();
        for r in &self.recursive {
            match *r {
                Rec::Set(f) => {
                    a.attr_set |= f;
                    a.attr_clr &= !f;
                }
                Rec::Clear(f) => {
                    a.attr_clr |= f;
                    a.attr_set &= !f;
                }
                Rec::Atime(v) => {
                    a.attr_set = (a.attr_set & !attr::ATIME_MASK) | v;
                    a.attr_clr |= attr::ATIME_MASK;
                }
            }
        }
        a
    }
}

pub fn parse(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for word in options {
        if let Some((_, set, f)) = FLAGS.iter().find(|(n, _, _)| n == word) {
            if *set {
                o.flags.insert(*f);
                o.cleared.remove(*f);
            } else {
                o.flags.remove(*f);
                o.cleared.insert(*f);
            }
        } else if let Some((_, p)) = PROPAGATION.iter().find(|(n, _)| n == word) {
            o.propagation.push(*p);
        } else if let Some((_, r)) = RECURSIVE.iter().find(|(n, _)| n == word) {
            o.recursive.push(*r);
        } else if word == "tmpcopyup" {
            o.tmpcopyup = true;
        } else if word == "idmap" {
            o.idmap = Some(Idmap::Top);
        } else if word == "ridmap" {
            o.idmap = Some(Idmap::Recursive);
        } else {
            o.data.extend(split_data(word));
        }
    }
    o
}

/// Split `a=1,b="x,y",c` at the commas outside double quotes and not escaped by a
/// backslash, as the kernel splits mount(2) data.
pub fn split_data(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for ch in word.chars() {
        match ch {
            _ if escaped => {
                cur.push(ch);
                escaped = false;
            }
            '\\' => {
                cur.push(ch);
                escaped = true;
            }
            '"' => {
                cur.push(ch);
                quoted = !quoted;
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out.retain(|s| !s.is_empty());
    out
}

/// Every option word berth understands, for `features`.
pub fn known_words() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAGS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROPAGATION.iter().map(|(n, _)| *n))
        .chain(RECURSIVE.iter().map(|(n, _)| *n))
        .chain(EXTENSIONS.iter().copied())
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = parse(&words(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
        ]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_words_override_earlier() {
        let o = parse(&words(&["ro", "rw", "noexec", "exec", "rbind"]));
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(o.cleared, MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC);
        assert!(o.is_bind() && o.is_rbind());
        assert!(o.data.is_empty());
        let a = o.mount_attr();
        assert_eq!((a.attr_set, a.attr_clr), (0, attr::RDONLY | attr::NOEXEC));
    }

    #[test]
    fn per_mount_attributes_and_atime() {
        let o = parse(&words(&["ro", "nosuid", "nodev", "noatime", "nosymfollow"]));
        let a = o.mount_attr();
        assert_eq!(
            a.attr_set,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOATIME | attr::NOSYMFOLLOW
        );
        assert_eq!(a.attr_clr, attr::ATIME_MASK);
        assert_eq!(o.superblock_flags(), ["ro"]);
        // `atime` asks for the kernel default, relatime.
        let a = parse(&words(&["noatime", "atime"])).mount_attr();
        assert_eq!((a.attr_set, a.attr_clr), (attr::RELATIME, attr::ATIME_MASK));
        // No atime word: the atime field is left alone.
        assert_eq!(parse(&words(&["nodev"])).mount_attr().attr_clr, 0);
    }

    #[test]
    fn recursive_words_merge_in_order() {
        let o = parse(&words(&[
            "rbind",
            "rro",
            "rnosuid",
            "rrw",
            "rnoatime",
            "rstrictatime",
        ]));
        let a = o.recursive_attr();
        assert_eq!(a.attr_set, attr::NOSUID | attr::STRICTATIME);
        assert_eq!(a.attr_clr, attr::RDONLY | attr::ATIME_MASK);
        assert!(o.data.is_empty());
        assert!(parse(&words(&["rbind"])).recursive_attr().is_empty());
    }

    #[test]
    fn extensions_are_recognised() {
        let o = parse(&words(&["tmpcopyup", "ridmap"]));
        assert!(o.tmpcopyup);
        assert_eq!(o.idmap, Some(Idmap::Recursive));
        assert!(o.data.is_empty());
    }

    #[test]
    fn data_words_split_like_the_kernel() {
        assert_eq!(split_data("mode=755,size=1k"), ["mode=755", "size=1k"]);
        assert_eq!(
            split_data("context=\"a:b:c:s0:c1,c2\",x"),
            ["context=\"a:b:c:s0:c1,c2\"", "x"]
        );
        assert_eq!(split_data("lowerdir=/a\\,b:/c"), ["lowerdir=/a\\,b:/c"]);
        assert!(split_data("").is_empty());
    }

    #[test]
    fn known_words_are_sorted_and_unique() {
        let w = known_words();
        let mut d = w.clone();
        d.dedup();
        assert_eq!(w, d);
        for want in [
            "rbind",
            "runbindable",
            "rro",
            "rnosymfollow",
            "tmpcopyup",
            "idmap",
            "ridmap",
        ] {
            assert!(w.contains(&want), "{want}");
        }
    }
}
