//! damo itself, for the differential tests: damo 3.4.3 from PyPI in a virtualenv under
//! `.cache/damo-venv`, made once and reused.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

pub const VERSION: &str = "3.4.3";

/// The `damo` executable, installing it first if needed.
pub fn ensure(workspace: &Path) -> Result<PathBuf> {
    let venv = workspace.join(".cache/damo-venv");
    let damo = venv.join("bin/damo");
    if installed_version(&venv).as_deref() == Some(VERSION) {
        return Ok(damo);
    }
    // Debian's python3 (python3-venv) first: the one `scripts/setup.sh` installs.
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| Command::new(p).args(["-m", "venv", "-h"]).output().is_ok_and(|o| o.status.success()));
    let Some(python) = python else { bail!("python3 with the venv module is missing: run scripts/setup.sh") };
    run(Command::new(python).args(["-m", "venv", "--clear"]).arg(&venv)).context("failed to create the damo virtualenv")?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", &format!("damo=={VERSION}")]))
        .with_context(|| format!("failed to install damo {VERSION} from PyPI"))?;
    if installed_version(&venv).as_deref() != Some(VERSION) {
        bail!("damo {VERSION} did not install into {}", venv.display());
    }
    Ok(damo)
}

fn installed_version(venv: &Path) -> Option<String> {
    let out = Command::new(venv.join("bin/pip")).args(["show", "damo"]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Version: ")).map(str::to_owned)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("failed to run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
