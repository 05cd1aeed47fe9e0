//! `berth list`: every container under the root, as a table or as JSON.

use crate::cli::ListArgs;
use crate::container::{StateReport, Store};
use crate::error::Result;
use crate::state::report;

pub fn list(store: &Store, a: &ListArgs) -> Result<()> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        let Ok(c) = store.peek(&id) else { continue };
        let Ok(Some(st)) = c.load() else { continue };
        let status = c.status(Some(&st));
        rows.push((st, status));
    }
    if a.quiet {
        for (st, _) in &rows {
            println!("{}", st.id);
        }
        return Ok(());
    }
    let reports: Vec<StateReport> = rows.iter().map(|(st, s)| report(st, *s)).collect();
    if a.format == "json" {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    print!("{}", table(&reports));
    Ok(())
}

fn table(reports: &[StateReport]) -> String {
    let mut cells = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for r in reports {
        let owner = if r.owner.is_empty() { "root" } else { r.owner };
        cells.push([
            r.id.to_string(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.to_string(),
            owner.to_string(),
        ]);
    }
    // Columns as Go's tabwriter lays them for runc: at least 12 wide, 3 spaces of padding.
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    #[test]
    fn table_aligns_columns() {
        let ann = BTreeMap::new();
        let r = StateReport {
            oci_version: "1.1.0",
            id: "c1",
            pid: 42,
            status: "running",
            bundle: Path::new("/b"),
            rootfs: Path::new("/b/rootfs"),
            created: "2026-01-01T00:00:00Z",
            owner: "",
            annotations: &ann,
        };
        let t = table(&[r]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID          PID         STATUS"));
        assert_eq!(lines[0].find("PID"), lines[1].find("42"));
        assert!(lines[1].ends_with("root"));
    }
}
