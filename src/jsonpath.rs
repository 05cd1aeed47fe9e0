//! Where in a JSON document a parse error is: `process.capabilities.bounding[3]`.
//!
//! serde_json says where it stopped (line and column); this scans the text up to there and
//! names the member and element it was in. Doing it only when parsing has failed keeps one
//! compiled deserializer for each type (a path-tracking wrapper doubles that code, about
//! half a megabyte for the runtime spec) and costs nothing on the way to a good config.

/// The path of the value being read at byte `offset`: members joined by `.`, elements as
/// `[i]`; `.` for the document itself.
pub fn path_at(text: &[u8], offset: usize) -> String {
    enum Frame {
        Object { key: Option<String> },
        Array { index: usize },
    }
    let text = &text[..offset.min(text.len())];
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                // A string where an object expects a name is that member's name.
                if let Some(Frame::Object { key }) = stack.last_mut()
                    && key.is_none()
                {
                    let end = i.min(text.len());
                    *key = Some(String::from_utf8_lossy(&text[start..end]).into_owned());
                }
            }
            b'{' => stack.push(Frame::Object { key: None }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key }) => *key = None,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for f in &stack {
        match f {
            Frame::Object { key: Some(k) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None } => break,
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if path.is_empty() { ".".into() } else { path }
}

/// The byte offset of serde_json's (1-based line, byte column) position.
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(n) => start += n + 1,
            None => return text.len(),
        }
    }
    start + column
}

/// Parse `text` as `T`; on failure, the path of the value at fault and serde_json's error.
pub fn from_slice<T: serde::de::DeserializeOwned>(
    text: &[u8],
) -> std::result::Result<T, (String, serde_json::Error)> {
    serde_json::from_slice(text).map_err(|e| {
        // The column is that of the last byte read: the one at fault in a syntax error
        // (left out), the end of the value or object in a data error (kept).
        let column = match e.classify() {
            serde_json::error::Category::Syntax => e.column().saturating_sub(1),
            _ => e.column(),
        };
        let path = if e.line() == 0 {
            ".".into()
        } else {
            path_at(text, offset_of(text, e.line(), column))
        };
        (path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;
    use serde_json::json;

    fn path_of(v: serde_json::Value) -> String {
        let text = serde_json::to_vec_pretty(&v).unwrap();
        from_slice::<Spec>(&text).map(drop).unwrap_err().0
    }

    #[test]
    fn names_the_value_at_fault() {
        let base = || json!({"ociVersion": "1.1.0", "root": {"path": "rootfs"}});
        let mut v = base();
        v["process"] = json!({"cwd": "/", "args": ["sh"], "user": {"uid": "x", "gid": 0}});
        assert_eq!(path_of(v), "process.user.uid");
        let mut v = base();
        v["process"] = json!({"cwd": "/", "capabilities": {"bounding": ["CAP_KILL", 3]}});
        assert_eq!(path_of(v), "process.capabilities.bounding[1]");
        let mut v = base();
        v["process"] = json!({"cwd": "/", "rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
            {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]});
        assert_eq!(path_of(v), "process.rlimits[1].type");
        // A missing member is reported at the end of the object that lacks it.
        let mut v = base();
        v["mounts"] = json!([{"destination": "/a"}, {"type": "tmpfs", "source": "x"}]);
        assert_eq!(path_of(v), "mounts[1]");
        let mut v = base();
        v["process"] = json!(7);
        assert_eq!(path_of(v), "process");
        let mut v = base();
        v["linux"] = json!({"namespaces": [{"type": "pid"}, {"type": "nope"}]});
        assert_eq!(path_of(v), "linux.namespaces[1].type");
        // Names with quotes and braces inside strings do not confuse the scan.
        let mut v = base();
        v["annotations"] = json!({"a\"{[": "}],"});
        v["hostname"] = json!(5);
        assert_eq!(path_of(v), "hostname");
    }

    #[test]
    fn syntax_errors_and_the_document_itself() {
        for (text, want) in [
            ("", "."),
            ("{ not json", "."),
            ("{\"root\": {", "root"),
            (
                "{\"root\": {\"path\": \"r\",\n \"readonly\": tru}}",
                "root.readonly",
            ),
        ] {
            let got = from_slice::<Spec>(text.as_bytes()).map(drop).unwrap_err().0;
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn offsets_from_lines_and_columns() {
        let t = b"ab\ncde\nf";
        assert_eq!(offset_of(t, 1, 2), 2);
        assert_eq!(offset_of(t, 2, 1), 4);
        assert_eq!(offset_of(t, 3, 1), 8);
        assert_eq!(offset_of(t, 9, 1), t.len());
    }
}
