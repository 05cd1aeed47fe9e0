//! The compiler's output, run in [`super::interp`]: what each call gets, against a
//! reference written straight from the profile's semantics, and how many instructions the
//! search takes.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Value, json};

use super::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Arch, X32_BIT};
use super::interp::run;
use super::profile::*;
use super::{bpf, build};

const X64: u32 = AUDIT_ARCH_X86_64;
const I386: u32 = AUDIT_ARCH_I386;
const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid linux.seccomp")
}

fn prog(v: Value) -> Vec<bpf::Insn> {
    build(&profile(v)).expect("compiles").0
}

fn nr(a: Arch, name: &str) -> u32 {
    a.nr(name).unwrap_or_else(|| panic!("{name} on {a:?}"))
}

fn ask(p: &[bpf::Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run(p, arch, nr, args).ret
}

fn x64(p: &[bpf::Insn], name: &str, args: [u64; 6]) -> u32 {
    ask(p, X64, nr(Arch::X86_64, name), args)
}

const NO: [u64; 6] = [0; 6];

/// What an operator means, on (argument, value).
type Pred = fn(u64, u64) -> bool;
/// (op, index, value, valueTwo)
type RefCond = (String, usize, u64, u64);

fn a0(v: u64) -> [u64; 6] {
    [v, 0, 0, 0, 0, 0]
}

#[test]
fn every_action_with_its_value() {
    let cases = [
        ("SCMP_ACT_KILL", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", RET_TRAP),
        ("SCMP_ACT_ERRNO", RET_ERRNO | 1),
        ("SCMP_ACT_TRACE", RET_TRACE | 1),
        ("SCMP_ACT_ALLOW", RET_ALLOW),
        ("SCMP_ACT_LOG", RET_LOG),
        ("SCMP_ACT_NOTIFY", RET_USER_NOTIF),
    ];
    for (action, want) in cases {
        let p = prog(json!({
            "defaultAction": if action == "SCMP_ACT_ALLOW" { "SCMP_ACT_LOG" } else { "SCMP_ACT_ALLOW" },
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]
        }));
        assert_eq!(x64(&p, "mkdir", NO), want, "{action}");
        assert_eq!(x64(&p, "mkdirat", NO), want, "{action}");
    }
    // errnoRet, for ERRNO and TRACE; defaultErrnoRet for the default.
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
            {"names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    assert_eq!(x64(&p, "mkdir", NO), RET_ERRNO | 28);
    assert_eq!(x64(&p, "rmdir", NO), RET_TRACE | 7);
    assert_eq!(x64(&p, "write", NO), RET_ALLOW);
    assert_eq!(x64(&p, "read", NO), RET_ERRNO | 13);
}

#[test]
fn every_operator_on_64_bit_values() {
    // Values straddling the halves: the high half decides unless equal.
    let v: u64 = 0x0000_0001_8000_0000;
    let probes: [u64; 9] = [
        0,
        v - 1,
        v,
        v + 1,
        0x0000_0000_8000_0000, // same low half, lower high half
        0x0000_0002_8000_0000, // same low half, higher high half
        0x0000_0002_0000_0000, // higher high, lower low
        0x0000_0000_ffff_ffff, // lower high, higher low
        u64::MAX,
    ];
    let ops: [(&str, Pred); 6] = [
        ("SCMP_CMP_NE", |a, b| a != b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
        ("SCMP_CMP_EQ", |a, b| a == b),
        ("SCMP_CMP_GE", |a, b| a >= b),
        ("SCMP_CMP_GT", |a, b| a > b),
    ];
    for value in [v, 5, 0, u64::MAX, 0xffff_ffff] {
        for (op, f) in ops {
            for index in [0usize, 5] {
                let p = prog(json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": index, "value": value, "op": op}]}]
                }));
                for a in probes
                    .iter()
                    .chain(&[value.wrapping_sub(1), value, value.wrapping_add(1)])
                {
                    let mut args = NO;
                    args[index] = *a;
                    let want = if f(*a, value) { RET_ALLOW } else { EPERM };
                    assert_eq!(
                        x64(&p, "ioctl", args),
                        want,
                        "{a:#x} {op} {value:#x} (arg {index})"
                    );
                }
            }
        }
    }
    // MASKED_EQ: (arg & value) == valueTwo, both halves.
    for (mask, want_v) in [
        (0x7e02_0000u64, 0u64),
        (0xffff_0000_0000_00ff, 0x1234_0000_0000_0012),
        (0x0000_0001_0000_0000, 0x0000_0001_0000_0000),
        (0xff, 0x100), // a bit outside the mask: never equal
    ] {
        let p = prog(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": mask, "valueTwo": want_v, "op": "SCMP_CMP_MASKED_EQ"}]}]
        }));
        for a in probes
            .iter()
            .chain(&[want_v, want_v | !mask, want_v ^ 1, want_v ^ (1 << 40)])
        {
            let want = if a & mask == want_v { RET_ALLOW } else { EPERM };
            assert_eq!(
                x64(&p, "clone", a0(*a)),
                want,
                "({a:#x} & {mask:#x}) == {want_v:#x}"
            );
        }
    }
}

#[test]
fn args_of_a_rule_are_anded_and_rules_ored() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            // runc's rule: the same index twice is two rules, ORed.
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let s = |a: u64, c: u64| x64(&p, "socket", [a, 0, c, 0, 0, 0]);
    assert_eq!(s(1, 0), RET_ALLOW);
    assert_eq!(s(1, 9), EPERM);
    assert_eq!(s(2, 9), RET_ALLOW);
    assert_eq!(s(3, 0), EPERM);
    assert_eq!(x64(&p, "personality", a0(0)), RET_ALLOW);
    assert_eq!(x64(&p, "personality", a0(8)), RET_ALLOW);
    assert_eq!(x64(&p, "personality", a0(4)), EPERM);
}

#[test]
fn the_most_restrictive_matching_rule_wins_in_any_order() {
    for order in [[0, 1], [1, 0]] {
        let rules = [
            json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW"}),
            json!({"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}),
        ];
        let p = prog(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [rules[order[0]].clone(), rules[order[1]].clone()]
        }));
        assert_eq!(x64(&p, "socket", a0(16)), RET_ERRNO | 22);
        assert_eq!(x64(&p, "socket", a0(2)), RET_ALLOW);
    }
}

#[test]
fn x86_and_x32_calls_are_filtered_by_their_own_numbers() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(ask(&p, X64, 83, NO), EPERM);
    assert_eq!(ask(&p, I386, 39, NO), EPERM, "int 0x80 mkdir");
    assert_eq!(ask(&p, X64, X32_BIT | 83, NO), EPERM, "x32 mkdir");
    assert_eq!(ask(&p, I386, nr(Arch::X86, "mkdirat"), NO), EPERM);
    // The same numbers mean other calls elsewhere: i386 83 is symlink, x86_64 39 getpid.
    assert_eq!(ask(&p, I386, 83, NO), RET_ALLOW);
    assert_eq!(ask(&p, X64, 39, NO), RET_ALLOW);
    // Another architecture altogether: a blocklist kills rather than allow it.
    assert_eq!(ask(&p, 0xc000_00b7, 83, NO), RET_KILL_PROCESS);
}

#[test]
fn architectures_not_listed_get_the_default_or_are_killed() {
    // A blocklist listing x86_64 only: int 0x80 and x32 must not run what it blocks.
    let block = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(ask(&block, X64, 83, NO), EPERM);
    assert_eq!(ask(&block, X64, 0, NO), RET_ALLOW);
    assert_eq!(ask(&block, I386, 39, NO), RET_KILL_PROCESS);
    assert_eq!(ask(&block, I386, 3, NO), RET_KILL_PROCESS);
    assert_eq!(ask(&block, X64, X32_BIT | 83, NO), RET_KILL_PROCESS);
    // nr -1 is no x32 call (ptrace's "skip"): x86_64's answer above its table.
    assert_eq!(ask(&block, X64, u32::MAX, NO), RET_ALLOW);
    // No architectures at all: the native one.
    let none = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(ask(&none, X64, 83, NO), EPERM);
    assert_eq!(ask(&none, I386, 39, NO), RET_KILL_PROCESS);
    // An allowlist: the unlisted architecture gets the default.
    let allow = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(ask(&allow, X64, 0, NO), RET_ALLOW);
    assert_eq!(ask(&allow, I386, 3, NO), EPERM);
    assert_eq!(ask(&allow, X64, X32_BIT, NO), EPERM);
}

#[test]
fn x86_arguments_compare_their_low_32_bits() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    }));
    let i386 = nr(Arch::X86, "personality");
    assert_eq!(ask(&p, I386, i386, a0(8)), EPERM);
    // High bits an int 0x80 caller left in the register do not reach the call.
    assert_eq!(ask(&p, I386, i386, a0(0x1_0000_0008)), EPERM);
    assert_eq!(ask(&p, I386, i386, a0(9)), RET_ALLOW);
    assert_eq!(x64(&p, "personality", a0(0x1_0000_0008)), RET_ALLOW);
}

#[test]
fn calls_newer_than_the_profile_get_enosys() {
    let v = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "openat", "execve"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}]
    });
    let p = prog(v.clone());
    let top = nr(Arch::X86_64, "openat"); // 257, the highest named
    assert_eq!(ask(&p, X64, top, NO), RET_ALLOW);
    assert_eq!(ask(&p, X64, top - 1, NO), EPERM, "older, not named");
    assert_eq!(ask(&p, X64, top + 1, NO), ENOSYS);
    assert_eq!(x64(&p, "clone3", NO), ENOSYS);
    assert_eq!(ask(&p, X64, 0x3fff_ffff, NO), ENOSYS);
    assert_eq!(ask(&p, X64, u32::MAX, NO), ENOSYS);
    // x32 and x86 by their own highest number.
    assert_eq!(ask(&p, X64, nr(Arch::X32, "execve"), NO), RET_ALLOW); // 520 | x32
    assert_eq!(ask(&p, X64, X32_BIT | 400, NO), EPERM);
    assert_eq!(ask(&p, X64, X32_BIT | 521, NO), ENOSYS);
    let i386_top = nr(Arch::X86, "openat"); // 295
    assert_eq!(ask(&p, I386, i386_top + 1, NO), ENOSYS);
    assert_eq!(ask(&p, I386, i386_top - 1, NO), EPERM);

    // Not when the default already is ENOSYS, nor when it lets calls through.
    let mut v2 = v.clone();
    v2["defaultErrnoRet"] = json!(38);
    assert_eq!(ask(&prog(v2), X64, top - 1, NO), ENOSYS);
    for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
        let mut v3 = v.clone();
        v3["defaultAction"] = json!(default);
        let want = action_value(serde_json::from_value(json!(default)).unwrap(), None, "").unwrap();
        assert_eq!(ask(&prog(v3), X64, top + 1, NO), want, "{default}");
    }
    // KILL-style defaults get it too.
    let mut v4 = v;
    v4["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    let p4 = prog(v4);
    assert_eq!(ask(&p4, X64, top + 1, NO), ENOSYS);
    assert_eq!(ask(&p4, X64, top - 1, NO), RET_KILL_PROCESS);
}

#[test]
fn unknown_names_are_skipped() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["no_such_call", "read", "socketcall"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x64(&p, "read", NO), RET_ALLOW);
}

#[test]
fn bad_profiles_fail_naming_the_field() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "config.json linux.seccomp.syscalls[1].args[0].index: 6 is not a system call argument",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
            "config.json linux.seccomp.syscalls[0].errnoRet: errno 70000 is above",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            "config.json linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
            {"names": ["read", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
            "config.json linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for sendmsg",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "config.json linux.seccomp.listenerPath: not set, but syscalls[1] uses SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}]}),
            "config.json linux.seccomp.syscalls[0].names[1]: empty",
        ),
    ];
    for (v, want) in cases {
        let e = build(&profile(v))
            .map(drop)
            .expect_err("must fail")
            .to_string();
        assert!(e.starts_with(want), "{e:?} does not start with {want:?}");
    }
}

#[test]
fn flags_reach_seccomp() {
    let (_, flags) = build(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
        "listenerPath": "/run/a.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert_eq!(
        flags,
        FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
    );
    // Without a listener the kernel refuses WAIT_KILLABLE_RECV: dropped.
    let (_, flags) = build(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    })))
    .unwrap();
    assert_eq!(flags, 0);
}

// ---------------------------------------------------------------------------------------
// The reference: the profile's meaning, written without the compiler's data structures.

fn severity(r: u32) -> i32 {
    (r & 0xffff_0000) as i32
}

fn act(v: &Value, errno: &Value) -> u32 {
    let a = serde_json::from_value(v.clone()).unwrap();
    action_value(a, errno.as_u64().map(|e| e as u32), "").unwrap()
}

fn holds(op: &str, arg: u64, value: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == two,
        _ => unreachable!(),
    }
}

/// The profile, parsed once for [`reference`].
struct Ref {
    default: u32,
    errno_ret: Option<u64>,
    listed: Vec<Arch>,
    /// (action, conditions (op, index, value, valueTwo), names)
    rules: Vec<(u32, Vec<RefCond>, Vec<String>)>,
}

fn parse_ref(p: &Value) -> Ref {
    Ref {
        default: act(&p["defaultAction"], &p["defaultErrnoRet"]),
        errno_ret: p["defaultErrnoRet"].as_u64(),
        listed: match p["architectures"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|n| Arch::from_oci(serde_json::from_value(n.clone()).unwrap()))
                .collect(),
            _ => vec![Arch::X86_64],
        },
        rules: p["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let conds = s["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        (
                            c["op"].as_str().unwrap().to_string(),
                            c["index"].as_u64().unwrap() as usize,
                            c["value"].as_u64().unwrap(),
                            c["valueTwo"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                let names = s["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
                    .collect();
                (act(&s["action"], &s["errnoRet"]), conds, names)
            })
            .collect(),
    }
}

fn reference(r: &Ref, audit: u32, nr: u32, args: [u64; 6]) -> u32 {
    let permissive = matches!(r.default & 0xffff_0000, RET_ALLOW | RET_LOG | RET_TRACE);
    let unlisted = if permissive {
        RET_KILL_PROCESS
    } else {
        r.default
    };
    let arch = match audit {
        AUDIT_ARCH_I386 => Arch::X86,
        AUDIT_ARCH_X86_64 if nr == u32::MAX && !r.listed.contains(&Arch::X32) => Arch::X86_64,
        AUDIT_ARCH_X86_64 if nr & X32_BIT != 0 => Arch::X32,
        AUDIT_ARCH_X86_64 => Arch::X86_64,
        _ => return unlisted,
    };
    if !r.listed.contains(&arch) {
        return unlisted;
    }
    let args: Vec<u64> = args
        .iter()
        .map(|a| {
            if arch == Arch::X86 {
                a & 0xffff_ffff
            } else {
                *a
            }
        })
        .collect();
    let mut best: Option<u32> = None;
    let mut named = false;
    let mut max = None::<u32>;
    for (action, conds, names) in &r.rules {
        let mut idx: Vec<usize> = conds.iter().map(|c| c.1).collect();
        idx.sort();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        let check = |c: &RefCond| holds(&c.0, args[c.1], c.2, c.3);
        let matches = if conds.is_empty() {
            true
        } else if repeated {
            conds.iter().any(check)
        } else {
            conds.iter().all(check)
        };
        for n in names {
            let Some(x) = arch.nr(n) else {
                continue;
            };
            max = max.max(Some(x));
            if x == nr {
                named = true;
                if matches && best.is_none_or(|b| severity(*action) < severity(b)) {
                    best = Some(*action);
                }
            }
        }
    }
    if let Some(b) = best {
        return b;
    }
    let enosys = !permissive && r.errno_ret != Some(38);
    match max {
        Some(m) if !named && enosys && nr > m => ENOSYS,
        _ => r.default,
    }
}

/// Every number near each architecture's table, with argument values around each
/// value the profile compares with.
fn agrees_with_reference(v: &Value) {
    let p = prog(v.clone());
    let r = parse_ref(v);
    let mut values: Vec<u64> = vec![0, 1, u64::MAX, 1 << 32, 0xffff_ffff];
    // Argument values only matter for calls with argument rules: try them on those.
    for s in v["syscalls"].as_array().into_iter().flatten() {
        for c in s["args"].as_array().into_iter().flatten() {
            for k in ["value", "valueTwo"] {
                if let Some(x) = c[k].as_u64() {
                    values.extend([x, x.wrapping_sub(1), x.wrapping_add(1), x | (1 << 33)]);
                }
            }
        }
    }
    values.sort();
    values.dedup();
    let mut calls: Vec<(u32, u32)> = Vec::new();
    for n in (0..600).chain([1000, 0x3fff_ffff, u32::MAX - 1, u32::MAX]) {
        calls.push((X64, n));
        calls.push((I386, n));
        calls.push((X64, X32_BIT.wrapping_add(n) | X32_BIT));
    }
    calls.push((0xc000_00b7, 0));
    for (audit, n) in calls {
        for (i, x) in values.iter().enumerate() {
            let args = [*x, values[(i + 1) % values.len()], *x, 0, *x, 0];
            let got = ask(&p, audit, n, args);
            let want = reference(&r, audit, n, args);
            assert_eq!(
                got, want,
                "arch {audit:#x} nr {n:#x} args {args:x?}: got {got:#x} want {want:#x}"
            );
        }
    }
}

fn default_profile() -> Value {
    serde_json::from_str(include_str!(
        "../../integration/data/containers-seccomp.oci.json"
    ))
    .expect("integration/data/containers-seccomp.oci.json")
}

#[test]
fn compiled_filters_agree_with_the_reference() {
    agrees_with_reference(&default_profile());
    let mut runtime_tools = default_profile();
    runtime_tools["defaultErrnoRet"] = Value::Null; // EPERM, so newer calls get ENOSYS
    agrees_with_reference(&runtime_tools);
    let mut blocklist = default_profile();
    blocklist["defaultAction"] = json!("SCMP_ACT_ALLOW");
    blocklist["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    agrees_with_reference(&blocklist);
}

#[test]
fn far_jumps_go_through_trampolines() {
    // Hundreds of argument rules on one call: the search must jump over them.
    let many: Vec<Value> = (0..60)
        .map(|i| {
            json!({"names": ["ioctl", "fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": i,
            "args": [{"index": 1, "value": 1000 + i, "op": "SCMP_CMP_EQ"},
                     {"index": 0, "value": i, "op": "SCMP_CMP_GE"}]})
        })
        .collect();
    let mut v = default_profile();
    v["syscalls"].as_array_mut().unwrap().extend(many);
    let p = prog(v.clone());
    assert!(p.len() > 1000, "{} instructions", p.len());
    assert!(
        p.iter().any(|i| i.code == bpf::JMP_JA && i.k > 255),
        "no long jump in a {}-instruction filter",
        p.len()
    );
    agrees_with_reference(&v);
}

#[test]
fn the_default_profile_is_a_short_binary_search() {
    let v = default_profile();
    let (p, _) = build(&profile(v)).unwrap();
    assert!(p.len() <= bpf::MAX_INSNS);
    let mut report = Vec::new();
    for name in [
        "read",
        "write",
        "futex",
        "epoll_wait",
        "openat",
        "close",
        "mmap",
    ] {
        let o = run(&p, X64, nr(Arch::X86_64, name), NO);
        assert_eq!(o.ret, RET_ALLOW, "{name}");
        report.push(format!("{name} {}", o.steps));
        // arch load + jeq, nr load + x32 split, ≤ 8 tree levels, ret.
        assert!(o.steps <= 13, "{name}: {} instructions executed", o.steps);
    }
    // The worst path over every x86_64 number.
    let worst = (0..600)
        .map(|n| run(&p, X64, n, [u64::MAX; 6]).steps)
        .max()
        .unwrap();
    eprintln!(
        "default profile: {} instructions; executed: {}; worst {worst}",
        p.len(),
        report.join(", ")
    );
}

/// `cargo test --release --bin berth -- --ignored compile_time --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn compile_time_of_the_default_profile() {
    let p = profile(default_profile());
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(build(std::hint::black_box(&p)).unwrap());
    }
    eprintln!("compile: {:?} per profile (mean of {n})", t.elapsed() / n);
}
