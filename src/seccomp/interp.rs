//! A classic-BPF interpreter for the instructions berth emits, as the kernel runs them on
//! `struct seccomp_data`: the tests check what a filter answers by running it.

use super::bpf::*;

pub struct Outcome {
    pub ret: u32,
    /// Instructions executed, the `ret` included.
    pub steps: usize,
}

/// Run `prog` on a call; panics on anything the kernel's checker would refuse.
pub fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> Outcome {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "length {}",
        prog.len()
    );
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let insn = prog
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} ran off the end"));
        steps += 1;
        let jump = |cond: bool| pc + 1 + if cond { insn.jt } else { insn.jf } as usize;
        pc = match insn.code {
            LD_W_ABS => {
                let o = insn.k as usize;
                assert!(o.is_multiple_of(4) && o + 4 <= 64, "load at {o}");
                a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                pc + 1
            }
            ALU_AND_K => {
                a &= insn.k;
                pc + 1
            }
            JMP_JA => pc + 1 + insn.k as usize,
            JMP_JEQ_K => jump(a == insn.k),
            JMP_JGT_K => jump(a > insn.k),
            JMP_JGE_K => jump(a >= insn.k),
            RET_K => return Outcome { ret: insn.k, steps },
            c => panic!("unknown opcode {c:#x} at {pc}"),
        };
    }
}
