//! Loading a bundle: its directory, `config.json`, and the checks made before anything is
//! created, so a bad bundle fails with the field at fault and leaves nothing behind.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::err;
use crate::error::{Context, Result};

/// config.json files larger than this are refused before parsing.
const MAX_CONFIG: u64 = 16 << 20;

pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

pub fn load(dir: Option<&Path>) -> Result<Bundle> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().ctx("bundle: current directory")?,
    };
    let dir = std::fs::canonicalize(&dir).with_ctx(|| format!("bundle {}", dir.display()))?;
    let path = dir.join("config.json");
    let spec = parse_config(&path)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| err!("config.json root: missing (root.path names the rootfs)"))?;
    let rootfs = dir.join(root.path());
    let meta = std::fs::metadata(&rootfs)
        .with_ctx(|| format!("config.json root.path: {}", rootfs.display()))?;
    if !meta.is_dir() {
        return Err(err!(
            "config.json root.path: {} is not a directory",
            rootfs.display()
        ));
    }
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_ctx(|| format!("config.json root.path: {}", rootfs.display()))?;
    check_process(&spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

pub fn parse_config(path: &Path) -> Result<Spec> {
    parse_json(path)
}

/// An OCI process object (`exec --process FILE`).
pub fn parse_process(path: &Path) -> Result<oci_spec::runtime::Process> {
    parse_json(path)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let f = std::fs::File::open(path).with_ctx(|| format!("open {}", path.display()))?;
    let len = f
        .metadata()
        .with_ctx(|| format!("stat {}", path.display()))?
        .len();
    if len > MAX_CONFIG {
        return Err(err!(
            "{}: {len} bytes, larger than the {MAX_CONFIG} allowed",
            path.display()
        ));
    }
    let mut text = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_CONFIG + 1), &mut text)
        .with_ctx(|| format!("read {}", path.display()))?;
    // The path of the field at fault (`process.capabilities.bounding[3]`) leads the message.
    crate::jsonpath::from_slice(&text).map_err(|(field, e)| {
        if field == "." {
            err!("{}: {e}", path.display())
        } else {
            err!("{} {field}: {e}", path.display())
        }
    })
}

fn check_process(spec: &Spec) -> Result<()> {
    // The spec makes `process` optional for create; `start` then fails.
    let Some(p) = spec.process().as_ref() else {
        return Ok(());
    };
    if p.args().as_deref().unwrap_or_default().is_empty() {
        return Err(err!(
            "config.json process.args: missing or empty, nothing to run"
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(err!(
            "config.json process.cwd: {:?} is not an absolute path",
            p.cwd()
        ));
    }
    Ok(())
}
