//! `regex` as oci-spec uses it (`Regex::new`, `is_match`), served by regex-lite.
pub use regex_lite::*;
