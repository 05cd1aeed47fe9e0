//! Reading `/proc/<pid>/stat`, the kernel's record of a process's state and start time.

use std::fs;

use crate::err;
use crate::error::{Context, Result};

pub struct ProcStat {
    /// Field 3: R, S, D, Z, T, …
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

pub fn proc_stat(pid: i32) -> Result<ProcStat> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).with_ctx(|| format!("read {path}"))?;
    parse(&text).ok_or_else(|| err!("parse {path}: unexpected format"))
}

/// The command name (field 2) may hold spaces and parentheses: fields are counted from the
/// last `)`.
fn parse(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), field 22 is the 19th more.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parens_and_spaces() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let s = parse(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn reads_own_process() {
        let s = proc_stat(std::process::id() as i32).unwrap();
        assert!(s.start_time > 0);
        assert!(matches!(s.state, 'R' | 'S'));
    }

    #[test]
    fn truncated_is_none() {
        assert!(parse("1 (x) S 1 2").is_none());
    }
}
