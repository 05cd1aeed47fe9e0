//! The v2 device controller: an eBPF program of berth's own (see `devices::program`),
//! loaded with `bpf(BPF_PROG_LOAD)` and attached to the container's cgroup with
//! `bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)`. Raw syscalls: no library, no ELF.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Context, Result};

/// One instruction: `struct bpf_insn` as a little-endian u64.
pub type Insn = u64;

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;

pub const DEVCG_DEV_BLOCK: i32 = 1;
pub const DEVCG_DEV_CHAR: i32 = 2;
pub const DEVCG_ACC_MKNOD: i32 = 1;
pub const DEVCG_ACC_READ: i32 = 2;
pub const DEVCG_ACC_WRITE: i32 = 4;

const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    code as u64
        | ((dst as u64 & 0xf) | ((src as u64 & 0xf) << 4)) << 8
        | (off as u16 as u64) << 16
        | (imm as u32 as u64) << 32
}

pub fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(LDX_MEM_W, dst, src, off, 0)
}
pub fn and_k(dst: u8, imm: i32) -> Insn {
    insn(ALU64_AND_K, dst, 0, 0, imm)
}
pub fn rsh_k(dst: u8, imm: i32) -> Insn {
    insn(ALU64_RSH_K, dst, 0, 0, imm)
}
pub fn mov_k(dst: u8, imm: i32) -> Insn {
    insn(ALU64_MOV_K, dst, 0, 0, imm)
}
pub fn mov_x(dst: u8, src: u8) -> Insn {
    insn(ALU64_MOV_X, dst, src, 0, 0)
}
pub fn jne_k(dst: u8, imm: i32, off: i16) -> Insn {
    insn(JMP_JNE_K, dst, 0, off, imm)
}
pub fn jne_x(dst: u8, src: u8, off: i16) -> Insn {
    insn(JMP_JNE_X, dst, src, off, 0)
}
pub fn exit() -> Insn {
    insn(JMP_EXIT, 0, 0, 0, 0)
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel takes the rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised repr(C) prefix of union bpf_attr and its
    // size is passed along; every pointer inside it points to memory that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    nix::errno::Errno::result(r)
}

/// Load `prog` and attach it to the cgroup at `dir` (other programs attached there by
/// others stay: BPF_F_ALLOW_MULTI, and the kernel requires every one of them to allow).
pub fn attach_device_filter(dir: &Path, prog: &[Insn]) -> Result<()> {
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let fd = match bpf(BPF_PROG_LOAD, &mut load) {
        Ok(fd) => fd,
        Err(e) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            let last = text.lines().last().unwrap_or("");
            return Err(e).with_ctx(|| format!("bpf(BPF_PROG_LOAD) of the device filter {last}"));
        }
    };
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir).with_ctx(|| format!("open {}", dir.display()))?;
    let mut attach = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach)
        .with_ctx(|| format!("bpf(BPF_PROG_ATTACH) to {}", dir.display()))?;
    // The cgroup holds the program from now on; our fd may close.
    Ok(())
}

/// Execute the subset of eBPF that `devices::program` emits, for tests.
#[cfg(test)]
pub fn interpret(prog: &[Insn], ctx: [u32; 3]) -> u64 {
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let code = i as u8;
        let dst = ((i >> 8) & 0xf) as usize;
        let src = ((i >> 12) & 0xf) as usize;
        let off = (i >> 16) as u16 as i16;
        let imm = (i >> 32) as u32 as i32 as i64 as u64;
        pc += 1;
        match code {
            LDX_MEM_W => r[dst] = ctx[off as usize / 4] as u64,
            ALU64_AND_K => r[dst] &= imm,
            ALU64_RSH_K => r[dst] >>= imm,
            ALU64_MOV_K => r[dst] = imm,
            ALU64_MOV_X => r[dst] = r[src],
            JMP_JNE_K if r[dst] != imm => pc = (pc as isize + off as isize) as usize,
            JMP_JNE_X if r[dst] != r[src] => pc = (pc as isize + off as isize) as usize,
            JMP_JNE_K | JMP_JNE_X => {}
            JMP_EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel_header() {
        // r2 = *(u32 *)(r1 + 4)
        assert_eq!(ldx_w(R2, R1, 4), 0x0000_0000_0004_1261);
        // if r1 != r3 goto +2
        assert_eq!(jne_x(R1, R3, 2), 0x0000_0000_0002_315d);
        assert_eq!(mov_k(R0, 1), 0x0000_0001_0000_00b7);
        assert_eq!(exit(), 0x95);
    }

    /// Loading needs root: it proves the kernel's verifier accepts what berth generates.
    #[test]
    fn the_kernel_verifier_accepts_the_program() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let rules = crate::cgroups::devices::rules(None, &[]).unwrap();
        let prog = crate::cgroups::devices::program(&rules);
        let license = c"Apache";
        let mut load = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        let fd = bpf(BPF_PROG_LOAD, &mut load).expect("BPF_PROG_LOAD");
        // SAFETY: closing the fd the kernel just gave us.
        unsafe { libc::close(fd as i32) };
    }
}
