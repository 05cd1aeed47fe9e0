//! Hostile config.json and process.json: a huge file, and deeply nested JSON, must fail
//! fast with a clear error and bounded memory, before anything is created.
//!
//! berth refuses a file larger than 16 MiB before reading it (`src/bundle.rs`,
//! `MAX_CONFIG`), and serde_json stops at 128 levels of nesting (its recursion limit, on by
//! default, also for fields berth ignores). The fuzz targets in `fuzz/` run the same
//! loaders on random input.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{BERTH, Env};

/// Run berth; (exit code, stderr, wall time, peak RSS in KiB). The RSS is measured by
/// GNU time (a small parent: a child forked from this big test process would count the
/// pages it shares with it until exec); 0 when /usr/bin/time is not installed.
fn measured(t: &Env, args: &[&str]) -> (i32, String, Duration, i64) {
    let err = t.dir.join("measured.err");
    let rss_file = t.dir.join("measured.rss");
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(BERTH);
        c
    } else {
        Command::new(BERTH)
    };
    let began = Instant::now();
    let st = cmd
        .arg("--root")
        .arg(&t.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let took = began.elapsed();
    let rss = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    let err = fs::read_to_string(&err).unwrap();
    // GNU time reports a non-zero exit on stderr too.
    let err = err
        .lines()
        .filter(|l| !l.starts_with("Command exited"))
        .collect::<Vec<_>>()
        .join("\n");
    (st.code().unwrap_or(-1), err, took, rss)
}

/// `depth` nested arrays inside an otherwise valid field's place.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn huge_and_deeply_nested_config_json_fail_fast() {
    let Some(t) = Env::new("sec_parsers") else {
        return;
    };
    let base = t.bundle(|_| {});
    let valid = fs::read_to_string(base.dir.join("config.json")).unwrap();

    // 64 MiB: a valid config followed by whitespace, so only the size is wrong.
    let huge = t.bundle(|_| {});
    let mut text = valid.clone().into_bytes();
    text.resize(64 << 20, b' ');
    fs::write(huge.dir.join("config.json"), &text).unwrap();
    // 100000 levels deep, in an unknown field (ignored by the schema, still parsed) and
    // in a known one.
    let deep_unknown = t.bundle(|_| {});
    let deep = nested(100_000);
    fs::write(
        deep_unknown.dir.join("config.json"),
        valid.replacen('{', &format!("{{\"x-deep\": {deep},"), 1),
    )
    .unwrap();
    let deep_known = t.bundle(|_| {});
    fs::write(
        deep_known.dir.join("config.json"),
        valid.replacen('{', &format!("{{\"annotations\": {deep},"), 1),
    )
    .unwrap();

    // Refused: too big, or nested where the schema wants a map or a string (the first
    // `[` is already wrong).
    let cases = [
        (&huge, "larger than the 16777216 allowed"),
        (&deep_known, "invalid type: sequence, expected a map"),
    ];
    for (b, phrase) in cases {
        let id = t.id("parse");
        let (code, err, took, rss) =
            t.leaves_nothing(&id, || measured(&t, &["create", "--bundle", b.path(), &id]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(phrase), "want {phrase:?}: {err}");
        assert!(err.contains("config.json"), "names the file: {err}");
        check_bounds(phrase, took, rss, &err);
    }
    // Skipped: an unknown field is ignored without recursion (serde_json skips it with an
    // explicit stack of a byte per level, bounded by the size cap), so it is accepted, in
    // bounded time and memory, as any unknown field is.
    let id = t.id("parse-deep");
    let (code, err, took, rss) = measured(&t, &["create", "--bundle", deep_unknown.path(), &id]);
    assert_eq!(code, 0, "{err}");
    check_bounds("100000 levels in an unknown field", took, rss, &err);
    t.berth(&["delete", "--force", &id]).ok();
}

/// Fast, and far below the input's size in memory (the debug binary itself maps ~10 MiB).
fn check_bounds(what: &str, took: Duration, rss: i64, err: &str) {
    assert!(
        took < Duration::from_secs(5),
        "{what}: took {took:?}: {err}"
    );
    assert!(rss < 48 * 1024, "{what}: peak RSS {rss} KiB: {err}");
    eprintln!("{what}: done in {took:?}, peak RSS {rss} KiB");
}

#[test]
fn huge_and_deeply_nested_process_json_fail_fast() {
    let Some(t) = Env::new("sec_parsers_exec") else {
        return;
    };
    let b = t.bundle(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = t.id("exec-parse");
    t.run_detached(&b, &id);
    let mut process = b.config()["process"].clone();
    process["args"] = json!(["true"]);
    let valid = process.to_string();
    let huge = t.dir.join("huge-process.json");
    let mut text = valid.clone().into_bytes();
    text.resize(64 << 20, b' ');
    fs::write(&huge, &text).unwrap();
    let deep = t.dir.join("deep-process.json");
    fs::write(
        &deep,
        valid.replacen('{', &format!("{{\"x-deep\": {},", nested(100_000)), 1),
    )
    .unwrap();
    let (code, err, took, rss) = measured(&t, &["exec", "--process", huge.to_str().unwrap(), &id]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("larger than the 16777216 allowed"), "{err}");
    check_bounds("64 MiB process.json", took, rss, &err);
    // 100000 levels in an unknown field: skipped, bounded; the exec runs.
    let (code, err, took, rss) = measured(&t, &["exec", "--process", deep.to_str().unwrap(), &id]);
    assert_eq!(code, 0, "{err}");
    check_bounds("100000 levels in process.json", took, rss, &err);
}
