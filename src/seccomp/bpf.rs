//! Classic BPF, as seccomp runs it: the instructions berth emits, and an assembler that
//! turns a program with symbolic labels into `struct sock_filter`s.
//!
//! Conditional jumps reach at most 255 instructions ahead (their offsets are one byte).
//! The assembler resolves labels and, where a conditional target is farther, sends that
//! branch to a `ja` trampoline placed right after the jump (`ja` has a 32-bit offset),
//! repeating until every offset fits.

use crate::err;
use crate::error::Result;

/// The kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/bpf_common.h): class | size | mode, class | op | source.
pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const ALU_AND_K: u16 = 0x04 | 0x50;
pub const JMP_JA: u16 = 0x05;
pub const JMP_JEQ_K: u16 = 0x05 | 0x10;
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
pub const RET_K: u16 = 0x06;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// `struct seccomp_data` offsets.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (x86 is little-endian); the high half is 4 bytes on.
pub fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A = 32-bit word at this offset of seccomp_data.
    Ld(u32),
    /// A &= k.
    And(u32),
    /// if (A cond k) goto t else goto f.
    Jmp(Cond, u32, Label, Label),
    /// goto.
    Ja(Label),
    Ret(u32),
    /// Marks the position of the next instruction.
    Here(Label),
}

/// A program under construction.
#[derive(Default)]
pub struct Asm {
    pub ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn emit(&mut self, op: Op) {
        self.ops.push(op);
    }
    pub fn here(&mut self, l: Label) {
        self.ops.push(Op::Here(l));
    }

    /// Resolve labels into offsets, inserting trampolines for far conditional jumps.
    pub fn assemble(mut self) -> Result<Vec<Insn>> {
        self.drop_jumps_to_next();
        loop {
            let (pos, count) = self.positions();
            let mut far = None;
            let mut at = 0usize;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Jmp(_, _, t, f) = op {
                    let dist = |l: &Label| pos[l.0] as i64 - at as i64 - 1;
                    if dist(t) > 255 || dist(f) > 255 {
                        far = Some((i, dist(t) > 255, dist(f) > 255));
                        break;
                    }
                }
                if !matches!(op, Op::Here(_)) {
                    at += 1;
                }
            }
            let Some((i, t_far, f_far)) = far else {
                if count > MAX_INSNS {
                    return Err(err!(
                        "the filter needs {count} BPF instructions, more than the kernel's {MAX_INSNS}"
                    ));
                }
                return self.encode(&pos);
            };
            let Op::Jmp(c, k, t, f) = self.ops[i] else {
                unreachable!("index found above is a conditional jump")
            };
            let mut tramp = Vec::new();
            let (mut nt, mut nf) = (t, f);
            if t_far {
                nt = self.label();
                tramp.extend([Op::Here(nt), Op::Ja(t)]);
            }
            if f_far {
                nf = self.label();
                tramp.extend([Op::Here(nf), Op::Ja(f)]);
            }
            self.ops[i] = Op::Jmp(c, k, nt, nf);
            self.ops.splice(i + 1..i + 1, tramp);
        }
    }

    /// A `ja` to the label that directly follows it is a no-op: remove it.
    fn drop_jumps_to_next(&mut self) {
        let mut out: Vec<Op> = Vec::with_capacity(self.ops.len());
        for i in 0..self.ops.len() {
            if let Op::Ja(l) = self.ops[i] {
                let next_real = self.ops[i + 1..]
                    .iter()
                    .take_while(|o| matches!(o, Op::Here(_)))
                    .any(|o| *o == Op::Here(l));
                if next_real {
                    continue;
                }
            }
            out.push(self.ops[i]);
        }
        self.ops = out;
    }

    /// The instruction index of every label, and the number of instructions.
    fn positions(&self) -> (Vec<usize>, usize) {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for op in &self.ops {
            match op {
                Op::Here(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        (pos, n)
    }

    fn encode(&self, pos: &[usize]) -> Result<Vec<Insn>> {
        let mut out = Vec::with_capacity(self.ops.len());
        let rel = |l: &Label, at: usize| -> Result<u32> {
            let p = pos[l.0];
            if p == usize::MAX || p <= at {
                return Err(err!("seccomp compiler: label {} not ahead of {at}", l.0));
            }
            Ok((p - at - 1) as u32)
        };
        for op in &self.ops {
            let at = out.len();
            let insn = match *op {
                Op::Here(_) => continue,
                Op::Ld(off) => Insn {
                    code: LD_W_ABS,
                    jt: 0,
                    jf: 0,
                    k: off,
                },
                Op::And(k) => Insn {
                    code: ALU_AND_K,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Ret(k) => Insn {
                    code: RET_K,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Ja(l) => Insn {
                    code: JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: rel(&l, at)?,
                },
                Op::Jmp(c, k, t, f) => Insn {
                    code: match c {
                        Cond::Eq => JMP_JEQ_K,
                        Cond::Gt => JMP_JGT_K,
                        Cond::Ge => JMP_JGE_K,
                    },
                    // Offsets are checked to fit by the caller.
                    jt: rel(&t, at)? as u8,
                    jf: rel(&f, at)? as u8,
                    k,
                },
            };
            out.push(insn);
        }
        Ok(out)
    }
}
