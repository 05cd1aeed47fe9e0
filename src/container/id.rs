//! Container ids become directory names under the state root, so they are checked before
//! any path is built from them: `../x` or `a/b` would otherwise escape the root.

use crate::err;
use crate::error::Result;

/// Longest id accepted: a directory name must fit NAME_MAX.
pub const MAX_ID_LEN: usize = 255;

pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(err!("invalid container id: it is empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(err!(
            "invalid container id: {} bytes long, at most {MAX_ID_LEN} allowed",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Err(err!("invalid container id {id:?}"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        return Err(err!(
            "invalid container id {id:?}: character {c:?} not allowed (use letters, digits and _ + - .)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_engine_ids() {
        for id in ["c1", "a.b_c+d-e", &"f".repeat(64), &"x".repeat(MAX_ID_LEN)] {
            assert!(validate_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_hostile_ids() {
        let long = "y".repeat(MAX_ID_LEN + 1);
        for id in [
            "", ".", "..", "../x", "a/b", "/abs", "a b", "a\0b", "é", &long,
        ] {
            assert!(validate_id(id).is_err(), "{id:?} must be rejected");
        }
    }
}
