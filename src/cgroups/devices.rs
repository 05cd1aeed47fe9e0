//! The device rules of a container: `linux.resources.devices` in config order, then an
//! allow rule for each `linux.devices` node, then the devices every container gets (as
//! runc: null, zero, full, random, urandom, tty, console, ptmx and the pts).
//!
//! The same list becomes `devices.allow` / `devices.deny` writes on v1 and an eBPF program
//! on v2 ([`program`]), so both versions allow exactly the same devices. Unlike runc, berth
//! does not allow `mknod` of every device: a container that may create a node of the host's
//! disk could open it again wherever the device cgroup is not in force (CVE-2019-16884's
//! class of mistakes), so mknod is allowed only for the devices listed.

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::ebpf::{self, Insn};
use crate::err;
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (every device), 'b' or 'c'.
    pub kind: char,
    /// `None`: any.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of r, w, m.
    pub access: String,
}

impl Rule {
    const fn dev(kind: char, major: i64, minor: Option<i64>) -> Rule {
        Rule {
            allow: true,
            kind,
            major: Some(major),
            minor,
            access: String::new(),
        }
    }

    /// The line written to devices.allow / devices.deny.
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// (major, minor) of the devices every container may use.
const DEFAULTS: &[(char, i64, Option<i64>)] = &[
    ('c', 1, Some(3)), // /dev/null
    ('c', 1, Some(5)), // /dev/zero
    ('c', 1, Some(7)), // /dev/full
    ('c', 1, Some(8)), // /dev/random
    ('c', 1, Some(9)), // /dev/urandom
    ('c', 5, Some(0)), // /dev/tty
    ('c', 5, Some(1)), // /dev/console
    ('c', 5, Some(2)), // /dev/ptmx
    ('c', 136, None),  // /dev/pts/*
];

pub fn defaults() -> Vec<Rule> {
    DEFAULTS
        .iter()
        .map(|&(k, ma, mi)| Rule {
            access: "rwm".into(),
            ..Rule::dev(k, ma, mi)
        })
        .collect()
}

/// An allow rule for each node of `linux.devices`.
pub fn from_linux_devices(list: Option<&[LinuxDevice]>) -> Vec<Rule> {
    list.unwrap_or_default()
        .iter()
        .filter_map(|d| {
            let kind = match d.typ() {
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                _ => return None,
            };
            Some(Rule {
                access: "rwm".into(),
                ..Rule::dev(kind, d.major(), Some(d.minor()))
            })
        })
        .collect()
}

/// `linux.resources.devices` checked and in order, then `extra`, then the defaults.
pub fn rules(config: Option<&[LinuxDeviceCgroup]>, extra: &[Rule]) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (i, d) in config.unwrap_or_default().iter().enumerate() {
        let field = format!("config.json linux.resources.devices[{i}]");
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::P) => {
                return Err(err!(
                    "{field}: type \"p\" (fifo) is not a device cgroup type"
                ));
            }
        };
        let access = d.access().clone().unwrap_or_default();
        let access = if access.is_empty() {
            "rwm".to_string()
        } else {
            access
        };
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(err!("{field}: access {access:?} may hold only r, w and m"));
        }
        for (n, v) in [("major", d.major()), ("minor", d.minor())] {
            if matches!(v, Some(v) if v < -1) {
                return Err(err!("{field}: {n} {} is not a device number", v.unwrap()));
            }
        }
        let num = |v: Option<i64>| v.filter(|&v| v >= 0);
        out.push(Rule {
            allow: d.allow(),
            kind,
            major: num(d.major()),
            minor: num(d.minor()),
            access,
        });
    }
    out.extend_from_slice(extra);
    out.extend(defaults());
    Ok(out)
}

/// The rules in force, as the v1 kernel keeps them: the last `a` rule sets the default
/// (allow when there is none, as a new cgroup inherits "allow all"); later rules are
/// exceptions, the last matching one winning.
pub fn effective(rules: &[Rule]) -> (bool, &[Rule]) {
    match rules.iter().rposition(|r| r.kind == 'a') {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (true, rules),
    }
}

/// A `BPF_PROG_TYPE_CGROUP_DEVICE` program for `rules`: the exceptions are tried last
/// first; the first that matches the device's type, numbers and every requested access
/// decides; none matching gives the default.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    use ebpf::*;
    let (default, exc) = effective(rules);
    // struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major, minor; }
    let mut p = vec![
        ldx_w(R2, R1, 0),
        and_k(R2, 0xffff), // r2: type
        ldx_w(R3, R1, 0),
        rsh_k(R3, 16), // r3: requested access
        ldx_w(R4, R1, 4),
        ldx_w(R5, R1, 8),
    ];
    for r in exc.iter().rev() {
        let mut block: Vec<Jump> = Vec::new();
        let ty = if r.kind == 'b' {
            DEVCG_DEV_BLOCK
        } else {
            DEVCG_DEV_CHAR
        };
        block.push(Jump::IfNeK(R2, ty));
        let mut acc = 0;
        for c in r.access.chars() {
            acc |= match c {
                'm' => DEVCG_ACC_MKNOD,
                'r' => DEVCG_ACC_READ,
                _ => DEVCG_ACC_WRITE,
            };
        }
        if acc != DEVCG_ACC_MKNOD | DEVCG_ACC_READ | DEVCG_ACC_WRITE {
            block.push(Jump::Plain(mov_x(R1, R3)));
            block.push(Jump::Plain(and_k(R1, acc)));
            block.push(Jump::IfNeX(R1, R3));
        }
        if let Some(m) = r.major {
            block.push(Jump::IfNeK(R4, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(Jump::IfNeK(R5, m as i32));
        }
        block.push(Jump::Plain(mov_k(R0, r.allow as i32)));
        block.push(Jump::Plain(exit()));
        let n = block.len();
        for (i, j) in block.into_iter().enumerate() {
            // A failed test skips the rest of this block.
            let skip = (n - i - 1) as i16;
            p.push(match j {
                Jump::Plain(x) => x,
                Jump::IfNeK(reg, imm) => jne_k(reg, imm, skip),
                Jump::IfNeX(a, b) => jne_x(a, b, skip),
            });
        }
    }
    p.push(mov_k(R0, default as i32));
    p.push(exit());
    p
}

enum Jump {
    Plain(Insn),
    IfNeK(u8, i32),
    IfNeX(u8, u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allow: bool, t: &str, ma: Option<i64>, mi: Option<i64>, acc: &str) -> LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({
            "allow": allow, "type": t, "major": ma, "minor": mi, "access": acc
        }))
        .unwrap()
    }

    #[test]
    fn config_order_then_defaults() {
        let c = vec![
            cfg(false, "a", None, None, "rwm"),
            cfg(true, "c", Some(10), Some(229), "rwm"),
            cfg(true, "b", Some(8), Some(20), "rw"),
        ];
        let r = rules(Some(&c), &[]).unwrap();
        let lines: Vec<String> = r.iter().map(Rule::v1_line).collect();
        assert_eq!(lines[0], "a");
        assert_eq!(lines[1], "c 10:229 rwm");
        assert_eq!(lines[2], "b 8:20 rw");
        assert_eq!(lines[3], "c 1:3 rwm");
        assert!(lines.contains(&"c 136:* rwm".to_string()));
        let (default, exc) = effective(&r);
        assert!(!default);
        assert_eq!(exc.len(), r.len() - 1);
    }

    #[test]
    fn bad_rules_name_the_entry() {
        let c = vec![cfg(true, "c", Some(1), Some(3), "rwx")];
        let e = rules(Some(&c), &[]).unwrap_err().to_string();
        assert!(e.contains("devices[0]") && e.contains("rwx"), "{e}");
    }

    /// Run the generated program on one device, as the kernel would.
    fn run(p: &[Insn], ty: u32, acc: u32, major: u32, minor: u32) -> u64 {
        ebpf::interpret(p, [(acc << 16) | ty, major, minor])
    }

    #[test]
    fn program_follows_the_rules() {
        let c = vec![
            cfg(false, "a", None, None, "rwm"),
            cfg(true, "b", Some(8), None, "r"),
            cfg(false, "b", Some(8), Some(1), "r"),
        ];
        let p = program(&rules(Some(&c), &[]).unwrap());
        let (b, ch) = (ebpf::DEVCG_DEV_BLOCK as u32, ebpf::DEVCG_DEV_CHAR as u32);
        let (r, w, m) = (
            ebpf::DEVCG_ACC_READ as u32,
            ebpf::DEVCG_ACC_WRITE as u32,
            ebpf::DEVCG_ACC_MKNOD as u32,
        );
        assert_eq!(run(&p, b, r, 8, 0), 1);
        assert_eq!(run(&p, b, r | w, 8, 0), 0);
        assert_eq!(run(&p, b, r, 8, 1), 0, "the later deny wins");
        assert_eq!(run(&p, b, m, 8, 0), 0, "no mknod of disks");
        assert_eq!(run(&p, ch, r | w, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, ch, r | w, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&p, ch, r, 4, 1), 0);
        let allow_all = program(&rules(None, &[]).unwrap());
        assert_eq!(run(&allow_all, b, r | w | m, 8, 0), 1);
    }
}
