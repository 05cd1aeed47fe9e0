//! `exec --process FILE`: the process.json loader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = berth_fuzz::scratch_file("process.json", data);
    let _ = berth_fuzz::bundle::parse_process(&path);
});
