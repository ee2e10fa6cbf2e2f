//! Runs scripts/setup.sh, which installs what is missing and does nothing otherwise.

use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn ensure() -> Result<()> {
    let script = workspace_root().join("scripts/setup.sh");
    let status = Command::new("bash").arg(&script).status().with_context(|| format!("failed to run {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}
