//! BPF for a [`Plan`]: dispatch on the architecture, then a balanced binary search over
//! system call numbers, then, for calls with argument rules, the rules.
//!
//! ```text
//!   ld arch
//!   jeq AUDIT_ARCH_X86_64 → x86_64
//!   jeq AUDIT_ARCH_I386   → x86
//!   ret <unlisted>
//! x86_64:
//!   ld nr
//!   jge 0x40000000 → x32            (the x32 bit: x32 calls share x86_64's arch value)
//!   <search over x86_64 numbers 0 .. 2^30-1>
//! x32:
//!   <search over x32 numbers 2^30 ..>   (or ret <unlisted>, -1 excepted, if not listed)
//! x86:
//!   ld nr
//!   <search over i386 numbers>
//! ```
//!
//! The search works on ranges, not numbers: consecutive numbers that get the same thing
//! (a run of allowed calls, a gap of unnamed ones, everything above the profile's highest
//! number) are one range, and a balanced tree of `jge` finds the range in ⌈log2(ranges)⌉
//! steps. A leaf is a `ret`, or a call's argument rules.

use super::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Arch, X32_BIT};
use super::bpf::{Asm, Cond, Insn, Label, OFF_ARCH, OFF_NR, Op, off_arg_lo};
use super::profile::{ArchPlan, ArgCond, CmpOp, Handler, Plan, Rule};
use crate::error::Result;

pub fn compile(plan: &Plan) -> Result<Vec<Insn>> {
    let mut g = Asm::default();
    let x64 = plan.arch(Arch::X86_64);
    let x32 = plan.arch(Arch::X32);
    let x86 = plan.arch(Arch::X86);

    g.emit(Op::Ld(OFF_ARCH));
    let l_x64 = g.label();
    let l_x86 = g.label();
    let l_bad = g.label();
    if x64.is_some() || x32.is_some() {
        let next = g.label();
        g.emit(Op::Jmp(Cond::Eq, AUDIT_ARCH_X86_64, l_x64, next));
        g.here(next);
    }
    if x86.is_some() {
        g.emit(Op::Jmp(Cond::Eq, AUDIT_ARCH_I386, l_x86, l_bad));
    }
    g.here(l_bad);
    g.emit(Op::Ret(plan.unlisted));

    if x64.is_some() || x32.is_some() {
        g.here(l_x64);
        g.emit(Op::Ld(OFF_NR));
        let l_x32 = g.label();
        let l_64 = g.label();
        g.emit(Op::Jmp(Cond::Ge, X32_BIT, l_x32, l_64));
        g.here(l_x32);
        match x32 {
            Some(p) => search(&mut g, p, X32_BIT, u32::MAX),
            None => {
                // nr -1 is not an x32 call: ptrace uses it to skip a call, and the kernel
                // answers it ENOSYS. Give it what x86_64 gives numbers above its table.
                let minus1 = g.label();
                let other = g.label();
                g.emit(Op::Jmp(Cond::Eq, u32::MAX, minus1, other));
                g.here(minus1);
                g.emit(Op::Ret(x64.map_or(plan.unlisted, |p| p.beyond)));
                g.here(other);
                g.emit(Op::Ret(plan.unlisted));
            }
        }
        g.here(l_64);
        match x64 {
            Some(p) => search(&mut g, p, 0, X32_BIT - 1),
            None => g.emit(Op::Ret(plan.unlisted)),
        }
    }
    if let Some(p) = x86 {
        g.here(l_x86);
        g.emit(Op::Ld(OFF_NR));
        search(&mut g, p, 0, u32::MAX);
    }
    g.assemble()
}

/// What numbers `lo..=hi` of one architecture get, as ranges (first number, handler) in
/// order, neighbours with equal handlers merged.
pub fn ranges(p: &ArchPlan, lo: u32, hi: u32) -> Vec<(u32, Handler)> {
    let mut out: Vec<(u32, Handler)> = Vec::new();
    let mut push = |start: u32, h: Handler| {
        if out.last().is_none_or(|(_, last)| *last != h) {
            out.push((start, h));
        }
    };
    let mut next = lo;
    let mut last = None;
    for (&nr, h) in p.calls.range(lo..=hi) {
        if nr > next {
            push(next, Handler::Ret(p.default));
        }
        push(nr, h.clone());
        next = nr.saturating_add(1);
        last = Some(nr);
    }
    if last == Some(u32::MAX) {
        return out;
    }
    // Above the highest named number (`beyond` is the default when nothing is named).
    push(next, Handler::Ret(p.beyond));
    out
}

/// The binary search over `lo..=hi`; the accumulator holds the number.
fn search(g: &mut Asm, p: &ArchPlan, lo: u32, hi: u32) {
    let rs = ranges(p, lo, hi);
    tree(g, p.arch, &rs);
}

fn tree(g: &mut Asm, arch: Arch, rs: &[(u32, Handler)]) {
    if let [(_, h)] = rs {
        leaf(g, arch, h);
        return;
    }
    let mid = rs.len() / 2;
    let right = g.label();
    let left = g.label();
    g.emit(Op::Jmp(Cond::Ge, rs[mid].0, right, left));
    g.here(left);
    tree(g, arch, &rs[..mid]);
    g.here(right);
    tree(g, arch, &rs[mid..]);
}

fn leaf(g: &mut Asm, arch: Arch, h: &Handler) {
    match h {
        Handler::Ret(k) => g.emit(Op::Ret(*k)),
        Handler::Rules { rules, fallback } => {
            for r in rules {
                rule(g, arch, r);
            }
            g.emit(Op::Ret(*fallback));
        }
    }
}

/// Every condition in turn; the first that fails goes on to the next rule.
fn rule(g: &mut Asm, arch: Arch, r: &Rule) {
    let fail = g.label();
    for c in &r.conds {
        let pass = g.label();
        cond(g, arch, c, pass, fail);
        g.here(pass);
    }
    g.emit(Op::Ret(r.action));
    g.here(fail);
}

/// Jump to `t` if the argument satisfies `c`, else to `f`.
fn cond(g: &mut Asm, arch: Arch, c: &ArgCond, t: Label, f: Label) {
    let (lo_off, hi_off) = (off_arg_lo(c.index), off_arg_lo(c.index) + 4);
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    // x86 arguments are 32 bits: the high half is taken as 0, whatever the register held.
    let hi_zero = arch.args_32bit();
    match c.op {
        CmpOp::Ne => cond(
            g,
            arch,
            &ArgCond {
                op: CmpOp::Eq,
                ..*c
            },
            f,
            t,
        ),
        CmpOp::Lt => cond(
            g,
            arch,
            &ArgCond {
                op: CmpOp::Ge,
                ..*c
            },
            f,
            t,
        ),
        CmpOp::Le => cond(
            g,
            arch,
            &ArgCond {
                op: CmpOp::Gt,
                ..*c
            },
            f,
            t,
        ),
        CmpOp::Eq => {
            if hi_zero {
                if vhi != 0 {
                    return g.emit(Op::Ja(f));
                }
            } else {
                let next = g.label();
                g.emit(Op::Ld(hi_off));
                g.emit(Op::Jmp(Cond::Eq, vhi, next, f));
                g.here(next);
            }
            g.emit(Op::Ld(lo_off));
            g.emit(Op::Jmp(Cond::Eq, vlo, t, f));
        }
        CmpOp::Gt | CmpOp::Ge => {
            let lo_cond = if c.op == CmpOp::Gt {
                Cond::Gt
            } else {
                Cond::Ge
            };
            if hi_zero {
                // 0 > vhi never; 0 == vhi decides on the low half.
                if vhi != 0 {
                    return g.emit(Op::Ja(f));
                }
            } else {
                // hi > vhi: true; hi < vhi: false; equal: the low halves decide.
                let equal = g.label();
                g.emit(Op::Ld(hi_off));
                if vhi == 0 {
                    g.emit(Op::Jmp(Cond::Eq, 0, equal, t));
                } else {
                    let not_above = g.label();
                    g.emit(Op::Jmp(Cond::Gt, vhi, t, not_above));
                    g.here(not_above);
                    g.emit(Op::Jmp(Cond::Eq, vhi, equal, f));
                }
                g.here(equal);
            }
            g.emit(Op::Ld(lo_off));
            g.emit(Op::Jmp(lo_cond, vlo, t, f));
        }
        CmpOp::MaskedEq(mask) => {
            let (mhi, mlo) = ((mask >> 32) as u32, mask as u32);
            if vhi & !mhi != 0 || vlo & !mlo != 0 {
                // Bits outside the mask can never be equal.
                return g.emit(Op::Ja(f));
            }
            if hi_zero || mhi == 0 {
                if vhi != 0 {
                    return g.emit(Op::Ja(f));
                }
            } else {
                let next = g.label();
                g.emit(Op::Ld(hi_off));
                g.emit(Op::And(mhi));
                g.emit(Op::Jmp(Cond::Eq, vhi, next, f));
                g.here(next);
            }
            g.emit(Op::Ld(lo_off));
            if mlo != u32::MAX {
                g.emit(Op::And(mlo));
            }
            g.emit(Op::Jmp(Cond::Eq, vlo, t, f));
        }
    }
}
