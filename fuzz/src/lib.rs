//! berth's parsers, compiled from berth's own sources for the fuzz targets.
//!
//! berth is a binary crate; these modules are its files, included by path, with the same
//! module names they have there (`crate::error`, `crate::err`, `rootfs::options` beside
//! `rootfs::mountapi`), so they build unchanged.

#[path = "../../src/error.rs"]
pub mod error;

#[path = "../../src/bundle.rs"]
pub mod bundle;

#[path = "../../src/jsonpath.rs"]
pub mod jsonpath;

#[path = "../../src/signal.rs"]
pub mod signal;

#[path = "../../src/rootfs"]
pub mod rootfs {
    // Only its `MountAttr` and `attr` are used, by the options parser.
    #[allow(dead_code)]
    #[path = "mountapi.rs"]
    pub mod mountapi;

    #[path = "options.rs"]
    pub mod options;
}

/// A file holding `data`, rewritten on each call (one per thread), for the loaders that
/// read a path.
pub fn scratch_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    use std::cell::RefCell;
    thread_local! {
        static DIR: RefCell<Option<std::path::PathBuf>> = const { RefCell::new(None) };
    }
    let dir = DIR.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| {
                let base = std::env::var_os("BERTH_FUZZ_TMP")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| std::path::PathBuf::from("/dev/shm"));
                let d = base.join(format!("berth-fuzz-{}", std::process::id()));
                std::fs::create_dir_all(&d).unwrap();
                d
            })
            .clone()
    });
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
