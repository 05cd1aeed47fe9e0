//! `mounts[].options`: each word is a mount flag, a propagation type, or filesystem data.
//!
//! The tables below are also what `berth features` reports as `mountOptions`, so the list
//! printed is the list implemented.

use nix::mount::MsFlags;

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
    ("iversion", true, MsFlags::MS_I_VERSION),
    ("lazytime", true, MsFlags::MS_LAZYTIME),
    ("loud", false, MsFlags::MS_SILENT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("nodev", true, MsFlags::MS_NODEV),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("noiversion", false, MsFlags::MS_I_VERSION),
    ("nolazytime", false, MsFlags::MS_LAZYTIME),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("nosuid", true, MsFlags::MS_NOSUID),
    (
        "nosymfollow",
        true,
        MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
    ),
    ("rbind", true, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("silent", true, MsFlags::MS_SILENT),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("suid", false, MsFlags::MS_NOSUID),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
];

/// Propagation words: applied with a separate mount(2) call after the mount itself.
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

#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// Words that are not flags, passed to the filesystem comma-joined (`size=64k,mode=755`).
    pub data: String,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

pub fn parse(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
    };
    let mut data: Vec<&str> = Vec::new();
    for word in options {
        if let Some((_, set, f)) = FLAGS.iter().find(|(n, _, _)| n == word) {
            if *set {
                o.flags.insert(*f);
            } else {
                o.flags.remove(*f);
            }
        } else if let Some((_, p)) = PROPAGATION.iter().find(|(n, _)| n == word) {
            o.propagation.push(*p);
        } else {
            data.push(word);
        }
    }
    o.data = data.join(",");
    o
}

/// Every option word berth understands, for `features`.
pub fn known_words() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAGS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROPAGATION.iter().map(|(n, _)| *n))
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
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_words_override_earlier() {
        let o = parse(&words(&["ro", "rw", "noexec", "exec", "rbind"]));
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.is_bind());
        assert!(o.data.is_empty());
    }

    #[test]
    fn known_words_are_sorted_and_unique() {
        let w = known_words();
        let mut d = w.clone();
        d.dedup();
        assert_eq!(w, d);
        assert!(w.contains(&"rbind") && w.contains(&"runbindable"));
    }
}
