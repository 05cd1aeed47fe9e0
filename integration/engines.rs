//! Real engines run their containers on berth, as they run them on runc: containerd 1.6
//! through `ctr`, podman 4.3 with conmon, and Docker 20.10 (Debian's packages, installed by
//! `.ci/run`), on a busybox image built locally (`hack/busybox-image.sh`).
//!
//! - `containerd`: a private containerd; `ctr run --runc-binary` (the runc v2 shim's
//!   `BinaryName` option): exit codes, terminals, exec, pause/resume, kill, delete, and
//!   berth's own error message in ctr's when a container fails.
//! - `podman`: `podman --runtime`, private storage and configuration: run, exec, stop, rm,
//!   an interactive `-it` session through a pty, `--version`, berth's default state dir.
//! - `docker`: a private dockerd (and containerd) with `--add-runtime`: run, exec, update,
//!   pause, stop, rm, and the libnetwork prestart hook Docker injects.
//!
//! Every engine calls berth through a logging wrapper (`hack/argv-wrapper.sh`); each test
//! prints the calls and fails if one has a shape engine-calls.md does not record for runc.
//! Every daemon is stopped by its pid, and its processes, mounts and cgroups removed,
//! when the test ends, also when it fails.

mod containerd;
mod docker;
mod podman;
mod support;
