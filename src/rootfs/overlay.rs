//! `overlay` mounts: `lowerdir` (several layers, `:`-separated, top first), `upperdir`
//! and `workdir`, checked before the mount so a mistake is named by its option instead of
//! coming back as the kernel's bare "Invalid argument".
//!
//! Layer paths are host paths, absolute or relative to the bundle (engines run runc with
//! the bundle as working directory, so that is where relative paths pointed there).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::err;
use crate::error::{Context, Result};

/// Check the overlay options in `data`, making relative layer paths absolute.
pub fn check(data: &mut [String], bundle: &Path) -> Result<()> {
    let mut lower = false;
    let mut upper: Option<PathBuf> = None;
    let mut work: Option<PathBuf> = None;
    for word in data.iter_mut() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let (key, value) = (key.to_string(), value.to_string());
        let field = || format!("overlay option {key}={value}");
        match key.as_str() {
            "lowerdir" => {
                let mut out = Vec::new();
                for layer in split_layers(&value) {
                    if layer.is_empty() {
                        // "a::b": the layers after "::" hold data only (Linux 6.5).
                        out.push(String::new());
                        continue;
                    }
                    let p = absolute(&unescape(&layer), bundle);
                    directory(&p).with_ctx(|| format!("{}: layer {}", field(), p.display()))?;
                    out.push(escape(&p));
                }
                if out.iter().all(String::is_empty) {
                    return Err(err!("{}: no layer", field()));
                }
                *word = format!("lowerdir={}", out.join(":"));
                lower = true;
            }
            "lowerdir+" | "datadir+" | "upperdir" | "workdir" => {
                let p = absolute(Path::new(&value), bundle);
                directory(&p).with_ctx(|| format!("{}: {}", field(), p.display()))?;
                *word = format!("{key}={}", p.display());
                match key.as_str() {
                    "lowerdir+" => lower = true,
                    "upperdir" => upper = Some(p),
                    "workdir" => work = Some(p),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !lower {
        return Err(err!(
            "overlay needs a lowerdir option (the read-only layers)"
        ));
    }
    match (&upper, &work) {
        (Some(_), None) => Err(err!(
            "overlay option upperdir needs a workdir option too (an empty directory on the same filesystem)"
        )),
        (Some(u), Some(w)) => {
            let (mu, mw) = (mount_id(u)?, mount_id(w)?);
            if mu != mw {
                return Err(err!(
                    "overlay options upperdir={} and workdir={}: not on the same mount, as overlay requires",
                    u.display(),
                    w.display()
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn absolute(p: &Path, bundle: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    }
}

fn directory(p: &Path) -> Result<()> {
    let m = std::fs::metadata(p)?;
    if !m.is_dir() {
        return Err(err!("not a directory"));
    }
    Ok(())
}

/// The id of the mount `p` is on (statx STATX_MNT_ID).
fn mount_id(p: &Path) -> Result<u64> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| err!("{}: contains a NUL byte", p.display()))?;
    // SAFETY: statx is a plain C struct of integers, for which all zeroes is valid.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a pointer to a statx buffer, both valid for the call.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut st) };
    nix::errno::Errno::result(r).with_ctx(|| format!("statx {}", p.display()))?;
    Ok(st.stx_mnt_id)
}

/// Split a `lowerdir` value at the colons not escaped by a backslash.
fn split_layers(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for ch in v.chars() {
        let cur = out.last_mut().expect("never empty");
        if escaped {
            cur.push(ch);
            escaped = false;
        } else if ch == '\\' {
            cur.push(ch);
            escaped = true;
        } else if ch == ':' {
            out.push(String::new());
        } else {
            cur.push(ch);
        }
    }
    out
}

fn unescape(s: &str) -> PathBuf {
    let mut out = String::new();
    let mut escaped = false;
    for ch in s.chars() {
        if !escaped && ch == '\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(ch);
    }
    PathBuf::from(out)
}

fn escape(p: &Path) -> String {
    let mut out = String::new();
    for ch in p.to_string_lossy().chars() {
        if matches!(ch, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn layers_split_at_unescaped_colons() {
        assert_eq!(split_layers("/a:/b\\:c::/d"), ["/a", "/b\\:c", "", "/d"]);
        assert_eq!(unescape("/b\\:c"), PathBuf::from("/b:c"));
        assert_eq!(escape(Path::new("/x:y")), "/x\\:y");
    }

    #[test]
    fn options_are_checked_and_made_absolute() {
        let d = std::env::temp_dir().join(format!("berth-overlay-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        for sub in ["l1", "l2", "up", "work"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::write(d.join("file"), "").unwrap();
        let mut ok = words(&[
            "lowerdir=l1:/nonexistent-never",
            "upperdir=up",
            "workdir=work",
        ]);
        let e = check(&mut ok, &d).unwrap_err().to_string();
        assert!(
            e.contains("lowerdir=l1:/nonexistent-never: layer /nonexistent-never"),
            "{e}"
        );

        let mut ok = words(&["lowerdir=l1:l2", "upperdir=up", "workdir=work", "index=off"]);
        check(&mut ok, &d).unwrap();
        assert_eq!(
            ok[0],
            format!(
                "lowerdir={}:{}",
                d.join("l1").display(),
                d.join("l2").display()
            )
        );
        assert_eq!(ok[3], "index=off");

        let mut bad = words(&["lowerdir=l1", "upperdir=file", "workdir=work"]);
        let e = check(&mut bad, &d).unwrap_err().to_string();
        assert!(
            e.contains("upperdir=file") && e.contains("not a directory"),
            "{e}"
        );
        let mut bad = words(&["lowerdir=l1", "upperdir=up"]);
        assert!(
            check(&mut bad, &d)
                .unwrap_err()
                .to_string()
                .contains("workdir")
        );
        let mut bad = words(&["upperdir=up", "workdir=work"]);
        assert!(
            check(&mut bad, &d)
                .unwrap_err()
                .to_string()
                .contains("lowerdir")
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
