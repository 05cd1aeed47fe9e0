//! `berth ps`: the processes of a container's cgroup. `--format json` prints the array of
//! host pids containerd reads; `table` runs ps(1) (with the given arguments, default `-ef`)
//! and keeps its header and the lines of those pids, as runc does.

use std::collections::HashSet;

use crate::cgroups;
use crate::cli::PsArgs;
use crate::container::{Status, Store};
use crate::err;
use crate::error::{Context, Result};

pub fn ps(store: &Store, a: &PsArgs) -> Result<()> {
    let c = store.peek(&a.id)?;
    let st = c
        .load()?
        .ok_or_else(|| err!("container {} is still being created", a.id))?;
    let pids = match cgroups::of(&st)? {
        Some(cg) => cg.driver().pids()?,
        None if c.status(Some(&st)) != Status::Stopped => vec![st.pid],
        None => Vec::new(),
    };
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<&str> = if a.ps_args.is_empty() {
        vec!["-ef"]
    } else {
        a.ps_args.iter().map(String::as_str).collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .ctx("run ps")?;
    if !out.status.success() {
        return Err(err!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(())
}

/// ps output cut down to its header and the lines whose PID column is one of `pids`.
fn filter(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| err!("ps: no PID column in its output (give ps arguments that print it)"))?;
    let want: HashSet<i32> = pids.iter().copied().collect();
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| want.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_listed_pids() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 sh\n";
        assert_eq!(
            filter(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter("USER COMMAND\n", &[1]).is_err());
    }
}
