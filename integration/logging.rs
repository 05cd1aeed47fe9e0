//! `--log FILE --log-format json|text`: a failing command writes its error to the log, in
//! the form containerd reads back (`{"level":"error","msg":…}`), and the same message on
//! stderr.

use std::fs;

use serde_json::{Value, json};

use crate::common::Env;

/// Every line of a JSON log file, parsed.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn failing_commands_log_the_error_as_json() {
    let Some(t) = Env::new("log_json") else {
        return;
    };
    let bad = t.bundle(|c| c["process"]["args"] = json!([]));
    let nosuch = t.id("nosuch");
    let created = t.id("never");
    // (arguments after the global flags, key phrase of the message)
    let table: Vec<(Vec<&str>, &str)> = vec![
        (vec!["state", &nosuch], "does not exist"),
        (vec!["delete", &nosuch], "does not exist"),
        (
            vec!["create", "--bundle", bad.path(), &created],
            "process.args",
        ),
        (vec!["kill", &nosuch, "FOO"], "unknown signal"),
    ];
    for (i, (args, phrase)) in table.iter().enumerate() {
        let log = t.dir.join(format!("log{i}.json"));
        let mut full = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        full.extend(args);
        let out = t.berth(&full);
        out.fails_with(phrase);
        let lines = json_lines(&fs::read_to_string(&log).unwrap_or_default());
        let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "error").collect();
        assert_eq!(errors.len(), 1, "one error line expected: {lines:?}\n{out}");
        let msg = errors[0]["msg"].as_str().expect("msg is a string");
        assert!(msg.contains(phrase), "log msg {msg:?} lacks {phrase:?}");
        assert!(errors[0]["time"].is_string(), "{:?}", errors[0]);
        assert!(
            out.stderr.contains(msg),
            "stderr lacks the logged message {msg:?}\n{out}"
        );
    }
}

#[test]
fn failing_commands_log_the_error_as_text() {
    let Some(t) = Env::new("log_text") else {
        return;
    };
    let id = t.id("nosuch");
    let log = t.dir.join("log.txt");
    let out = t.berth(&["--log", log.to_str().unwrap(), "state", &id]);
    out.fails_with("does not exist");
    let text = fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("level=error"))
        .unwrap_or_else(|| panic!("{text:?}"));
    let want = format!("msg=\"container {id} does not exist\"");
    assert!(line.contains(&want), "{line:?} lacks {want}");
    assert!(line.starts_with("time=\""), "{line:?}");
}

#[test]
fn successful_commands_log_no_error_and_debug_adds_lines() {
    let Some(t) = Env::new("log_debug") else {
        return;
    };
    let quiet = t.dir.join("quiet.json");
    t.berth(&[
        "--log",
        quiet.to_str().unwrap(),
        "--log-format",
        "json",
        "list",
    ])
    .ok();
    let lines = json_lines(&fs::read_to_string(&quiet).unwrap_or_default());
    assert!(lines.iter().all(|l| l["level"] != "error"), "{lines:?}");

    let debug = t.dir.join("debug.json");
    t.berth(&[
        "--debug",
        "--log",
        debug.to_str().unwrap(),
        "--log-format",
        "json",
        "list",
    ])
    .ok();
    let lines = json_lines(&fs::read_to_string(&debug).unwrap_or_default());
    assert!(
        lines.iter().any(|l| l["level"] == "debug"),
        "--debug logged nothing: {lines:?}"
    );
}
