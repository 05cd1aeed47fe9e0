//! Signal names and numbers as `kill` accepts them: `9`, `KILL`, `SIGKILL`, `sigkill`,
//! and the real-time forms `RTMIN`, `RTMIN+3`, `RTMAX-1`.

use nix::sys::signal::Signal;

use crate::err;
use crate::error::Result;

/// Parse a signal for `kill`; the number is returned because real-time signals have no
/// `Signal` variant.
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || err!("unknown signal {s:?}");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = t.parse().map_err(|_| bad())?;
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(n) = parse_rt(name) {
        return n.ok_or_else(bad);
    }
    let full = format!("SIG{name}");
    full.parse::<Signal>().map(|s| s as i32).map_err(|_| bad())
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`; `None` when the name is not of that form.
fn parse_rt(name: &str) -> Option<Option<i32>> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let (base, rest, sign) = if let Some(r) = name.strip_prefix("RTMIN") {
        (min, r, 1)
    } else if let Some(r) = name.strip_prefix("RTMAX") {
        (max, r, -1)
    } else {
        return None;
    };
    if rest.is_empty() {
        return Some(Some(base));
    }
    let off = if sign > 0 {
        rest.strip_prefix('+')
    } else {
        rest.strip_prefix('-')
    };
    let n = off.and_then(|o| o.parse::<i32>().ok());
    Some(
        n.and_then(|n| base.checked_add(sign * n))
            .filter(|v| (min..=max).contains(v)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_kill() {
        for s in ["9", "KILL", "kill", "SIGKILL", "sigkill", "SigKill"] {
            assert_eq!(parse_signal(s).unwrap(), libc::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("15").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("SIGWINCH").unwrap(), libc::SIGWINCH);
    }

    #[test]
    fn realtime_signals() {
        assert_eq!(parse_signal("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse_signal("rtmax-1").unwrap(), libc::SIGRTMAX() - 1);
        assert!(parse_signal("RTMIN+99").is_err());
        assert!(parse_signal("RTMINX").is_err());
        // Found by fuzzing: no overflow on huge offsets.
        assert!(parse_signal("RTMIN+2147483647").is_err());
        assert!(parse_signal("RTMAX-2147483647").is_err());
    }

    #[test]
    fn unknown_signals_are_errors() {
        for s in ["", "0", "65", "-9", "SIGFOO", "KILLX", "9x", "99999999999"] {
            assert!(parse_signal(s).is_err(), "{s:?} must be rejected");
        }
        assert_eq!(
            parse_signal("FOO").unwrap_err().to_string(),
            "unknown signal \"FOO\""
        );
    }
}
