//! One error type for the whole runtime.
//!
//! An error is a chain of context joined by `: `, outermost first, ending in the kernel's
//! reason, e.g. `config.json mounts[2] (/proc): mount proc on /proc/self/fd/7: Device or
//! resource busy`. Syscall wrappers add the path or field they act for, so context is added
//! once, where it is known.

use std::fmt;

use nix::errno::Errno;

pub struct Error {
    msg: String,
    errno: Option<Errno>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error {
            msg: msg.into(),
            errno: None,
        }
    }

    /// The kernel's error number at the root of the chain, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    #[must_use]
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }
}

/// Build an [`Error`] with `format!` syntax.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => { $crate::error::Error::new(format!($($t)*)) };
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error {
            msg: e.desc().to_string(),
            errno: Some(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(code) => Errno::from_raw(code).into(),
            None => Error::new(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(e.to_string())
    }
}

/// Adds context to any fallible result.
pub trait Context<T> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T>;
    fn with_ctx<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(ctx))
    }
    fn with_ctx<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_chains_outermost_first_and_keeps_errno() {
        let r: Result<()> = Err(Errno::EBUSY)
            .ctx("mount proc")
            .ctx("config.json mounts[0]");
        let e = r.unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json mounts[0]: mount proc: Device or resource busy"
        );
        assert_eq!(e.errno(), Some(Errno::EBUSY));
    }

    #[test]
    fn io_errors_read_like_errno_text() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e: Error = io.into();
        assert_eq!(e.to_string(), "No such file or directory");
    }
}
