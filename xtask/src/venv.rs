//! Python packages the tests run, each pinned in a virtualenv under `.cache`, made once and
//! reused: damo (the differential tests), DuckDB and pyspark (the dataset queries).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

/// The pinned packages of the dataset tests (damo-fleet/sql/run.py).
pub const DUCKDB: (&str, &str) = ("duckdb", "2.0.1");
pub const PYSPARK: (&str, &str) = ("pyspark", "4.0.1");

/// Makes `venv` hold `package==version` (installing from PyPI if needed); returns its python.
pub fn ensure(venv: &Path, (package, version): (&str, &str)) -> Result<PathBuf> {
    if installed_version(venv, package).as_deref() != Some(version) {
        // Debian's python3 (python3-venv) first: the one `scripts/setup.sh` installs.
        let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| Command::new(p).args(["-m", "venv", "-h"]).output().is_ok_and(|o| o.status.success()));
        let Some(python) = python else { bail!("python3 with the venv module is missing: run scripts/setup.sh") };
        run(Command::new(python).args(["-m", "venv", "--clear"]).arg(venv)).with_context(|| format!("failed to create the {package} virtualenv"))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", &format!("{package}=={version}")])).with_context(|| format!("failed to install {package} {version} from PyPI"))?;
        if installed_version(venv, package).as_deref() != Some(version) {
            bail!("{package} {version} did not install into {}", venv.display());
        }
    }
    Ok(venv.join("bin/python"))
}

fn installed_version(venv: &Path, package: &str) -> Option<String> {
    let out = Command::new(venv.join("bin/pip")).args(["show", package]).output().ok()?;
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
