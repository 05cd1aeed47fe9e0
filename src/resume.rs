//! `berth resume`: thaw a paused container.

use crate::container::Store;
use crate::error::Result;

pub fn resume(store: &Store, id: &str) -> Result<()> {
    crate::pause::set(store, id, false)
}
