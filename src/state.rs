//! `berth state`: the OCI state of a container, as JSON on stdout.

use crate::container::{State, StateReport, Status, Store};
use crate::err;
use crate::error::Result;

pub fn state(store: &Store, id: &str) -> Result<()> {
    let c = store.peek(id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {id} is still being created"))?;
    let status = c.status(Some(&st));
    println!("{}", serde_json::to_string_pretty(&report(&st, status))?);
    Ok(())
}

/// The state as printed; a stopped container's pid is 0, as runc prints it.
pub fn report(st: &State, status: Status) -> StateReport<'_> {
    StateReport {
        oci_version: &st.oci_version,
        id: &st.id,
        pid: if status == Status::Stopped { 0 } else { st.pid },
        status: status.as_str(),
        bundle: &st.bundle,
        rootfs: &st.rootfs,
        created: &st.created,
        owner: &st.owner,
        annotations: &st.annotations,
    }
}
