//! `berth pause`: freeze every process of the container (v1 freezer, v2 cgroup.freeze),
//! returning once the kernel reports the cgroup frozen. `state` then says `paused`.

use crate::cgroups;
use crate::container::{Status, Store};
use crate::err;
use crate::error::Result;

pub fn pause(store: &Store, id: &str) -> Result<()> {
    set(store, id, true)
}

/// Freeze or thaw `id`; shared with `resume`.
pub fn set(store: &Store, id: &str, frozen: bool) -> Result<()> {
    let c = store.open(id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {id} is still being created"))?;
    match (c.status(Some(&st)), frozen) {
        (Status::Created | Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(err!("container {id} is already paused")),
        (Status::Created | Status::Running, false) => {
            return Err(err!("container {id} is not paused"));
        }
        _ => return Err(err!("container {id} is not running")),
    }
    let cg = cgroups::of(&st)?.ok_or_else(|| err!("container {id} has no cgroup to freeze"))?;
    cg.driver().set_frozen(frozen)
}
