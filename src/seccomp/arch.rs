//! The architectures whose system calls a filter on this machine can see, and their
//! system call numbers by name.
//!
//! On x86_64 a process reaches the kernel in three ways, and the filter sees each:
//! - x86_64 `syscall`: `seccomp_data.arch` is AUDIT_ARCH_X86_64, `nr` below 2^30;
//! - x32 `syscall`: also AUDIT_ARCH_X86_64, with the x32 bit (2^30) set in `nr`;
//! - x86 (i386) `int 0x80`, `sysenter`: AUDIT_ARCH_I386, with i386 numbers.
//!
//! Any program can use all three, so a filter that checked x86_64 numbers alone would let
//! `int 0x80` (or x32) run what the profile blocks. berth's filter decides for each.

use oci_spec::runtime::Arch as OciArch;

use super::tables;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X32,
    X86,
}

pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::X32, Arch::X86];

impl Arch {
    /// The native architecture of this build.
    pub const NATIVE: Arch = Arch::X86_64;

    /// The profile's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::X86 => "SCMP_ARCH_X86",
        }
    }

    /// The architecture a profile names, when this machine can run its system calls.
    pub fn from_oci(a: OciArch) -> Option<Arch> {
        match a {
            OciArch::ScmpArchNative => Some(Arch::NATIVE),
            OciArch::ScmpArchX86_64 => Some(Arch::X86_64),
            OciArch::ScmpArchX32 => Some(Arch::X32),
            OciArch::ScmpArchX86 => Some(Arch::X86),
            _ => None,
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::X32 => tables::X32,
            Arch::X86 => tables::X86,
        }
    }

    /// The number of system call `name`, as `seccomp_data.nr` shows it.
    pub fn nr(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }

    /// Whether any of berth's tables knows `name`.
    pub fn known_anywhere(name: &str) -> bool {
        ALL.iter().any(|a| a.nr(name).is_some())
    }

    /// Whether the system call's arguments are 32 bits wide. The kernel passes an x86
    /// call's arguments as the full 64-bit registers, whose high halves a 64-bit program
    /// using `int 0x80` controls but the system call ignores: a filter must compare only
    /// the low halves, or a blocklist's argument rule is bypassed by setting a high bit.
    pub fn args_32bit(self) -> bool {
        self == Arch::X86
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_know_the_usual_calls() {
        for a in ALL {
            let t = a.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{a:?} not sorted");
        }
        assert_eq!(Arch::X86_64.nr("read"), Some(0));
        assert_eq!(Arch::X86_64.nr("mkdir"), Some(83));
        assert_eq!(Arch::X86.nr("mkdir"), Some(39));
        assert_eq!(Arch::X32.nr("mkdir"), Some(X32_BIT | 83));
        assert_eq!(Arch::X32.nr("rt_sigaction"), Some(X32_BIT | 512));
        assert_eq!(Arch::X86.nr("socketcall"), Some(102));
        assert_eq!(Arch::X86_64.nr("socketcall"), None);
        assert_eq!(Arch::X86_64.nr("clone3"), Some(435));
        assert_eq!(Arch::X86_64.nr("fchmodat2"), Some(452));
        assert!(!Arch::known_anywhere("no_such_call"));
    }
}
