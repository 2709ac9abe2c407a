//! `gen-completions SHARE`: write every tool's bash, zsh and fish completions under SHARE
//! (`bash-completion/completions/`, `zsh/site-functions/`, `fish/vendor_completions.d/`).

#![forbid(unsafe_code)]

use std::path::PathBuf;

fn main() {
    seedkit::run("gen-completions", || {
        let Some(share) = std::env::args_os().nth(1) else {
            anyhow::bail!("usage: gen-completions SHARE_DIR");
        };
        completions::write_all(&PathBuf::from(share))?;
        Ok(seedkit::Status::Success)
    });
}
