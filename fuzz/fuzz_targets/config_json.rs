//! config.json: the bundle loader (parse, then the checks made before anything is created).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = berth_fuzz::scratch_file("config.json", data);
    // parse_config alone, then the whole load (root.path, process checks) when the
    // bundle directory holds it: only errors, never a panic.
    let _ = berth_fuzz::bundle::parse_config(&path);
    let _ = berth_fuzz::bundle::load(path.parent());
});
