//! `kill ID SIGNAL`: the signal parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(n) = berth_fuzz::signal::parse_signal(s)
    {
        // Whatever it accepts is a real signal number.
        assert!((1..=libc::SIGRTMAX()).contains(&n), "{s:?} -> {n}");
    }
});
