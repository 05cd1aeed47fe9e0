//! `--log FILE`, `--log-format text|json` and `--debug`, as runc writes them.
//!
//! containerd and Docker show their users the last `{"level":"error","msg":…}` line of the
//! log file, so every fatal error is written there as well as on stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::timefmt::rfc3339;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
}

/// One log line in the chosen format, newline-terminated.
pub fn line(format: Format, level: Level, msg: &str, now: SystemTime) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let time = rfc3339(now, false);
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        Format::Text => {
            let quoted = serde_json::Value::String(msg.to_string());
            format!("time=\"{time}\" level={level} msg={quoted}\n")
        }
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = line(
            self.format,
            r.level(),
            &r.args().to_string(),
            SystemTime::now(),
        );
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(text.as_bytes());
                }
            }
            // Without --log, debug lines go to stderr as runc's do; errors are printed by main.
            None if r.level() > Level::Error => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
            None => {}
        }
    }

    fn flush(&self) {}
}

/// Install the logger. A log file that cannot be opened is reported on stderr and ignored,
/// so the command itself still runs and reports its own outcome.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) {
    let file = path.and_then(|p| {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
        {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!("berth: open log file {}: {e}", p.display());
                None
            }
        }
    });
    let logger = Box::new(Logger { file, format });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(if debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Warn
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn json_line_is_what_containerd_parses() {
        let l = line(Format::Json, Level::Error, "bad \"x\"", UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "bad \"x\"");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert!(l.ends_with('\n'));
    }

    #[test]
    fn text_line_quotes_the_message() {
        let l = line(Format::Text, Level::Debug, "a b", UNIX_EPOCH);
        assert_eq!(l, "time=\"1970-01-01T00:00:00Z\" level=debug msg=\"a b\"\n");
    }
}
