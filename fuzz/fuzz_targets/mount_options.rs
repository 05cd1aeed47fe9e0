//! `mounts[].options`: words split from the input at NUL bytes, parsed, and every derived
//! value computed (flags, attributes, superblock words, data split).
#![no_main]

use berth_fuzz::rootfs::options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let words: Vec<String> = data
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let o = options::parse(&words);
    let _ = (o.is_bind(), o.is_rbind());
    let _ = o.mount_attr();
    let _ = o.fsmount_attr();
    let _ = o.superblock_flags();
    let _ = o.recursive_attr();
    for w in &words {
        let parts = options::split_data(w);
        // Splitting only removes separators: nothing is invented.
        assert!(parts.iter().map(String::len).sum::<usize>() <= w.len());
    }
});
