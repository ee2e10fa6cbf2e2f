//! damo itself, for the differential tests and the benchmark: damo 3.4.3 from PyPI in a
//! virtualenv under `.cache/damo-venv`, made once and reused, and run sandboxed.
//!
//! damo probes DAMON's sysfs as root whenever it initializes and no kdamond runs: it stages
//! a kdamond of its own, then restores what it found. On a host that write is not ours to
//! make, so every run of damo goes through [`SANDBOX`]: as root, in a mount namespace of its
//! own where an empty tmpfs hides `/sys/kernel/mm/damon`. damo's reports read only files.

use std::path::{Path, PathBuf};

use anyhow::Result;

pub const VERSION: &str = "3.4.3";

/// damo, run where it cannot reach the machine's DAMON sysfs when it runs as root: the tmpfs
/// mount is private to damo's namespace and gone with it. `DAMO` is replaced by its path.
const SANDBOX: &str = r#"#!/bin/sh
set -eu
damo="DAMO"
if [ "$(id -u)" = 0 ] && [ -d /sys/kernel/mm/damon ]; then
  exec unshare --mount --propagation private -- \
    sh -c 'mount -t tmpfs damo-sandbox /sys/kernel/mm/damon && exec "$0" "$@"' "$damo" "$@"
fi
exec "$damo" "$@"
"#;

/// The executable to run damo with (sandboxed), installing damo first if needed.
pub fn ensure(workspace: &Path) -> Result<PathBuf> {
    let venv = workspace.join(".cache/damo-venv");
    crate::venv::ensure(&venv, ("damo", VERSION))?;
    let sandboxed = venv.join("bin/damo-sandboxed");
    // damo is found beside the script, not at a path written in it: a checkout that reaches
    // this cache through a symlink (a worktree) must not repoint every other checkout's damo.
    std::fs::write(&sandboxed, sandbox_script(Path::new("$(dirname \"$0\")/damo")))?;
    std::fs::set_permissions(&sandboxed, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(sandboxed)
}

fn sandbox_script(damo: &Path) -> String {
    SANDBOX.replace("DAMO", &damo.display().to_string())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// What damo would see and leave behind: a stand-in that lists DAMON's sysfs and tries
    /// to write there, run through the sandbox.
    #[test]
    fn sandboxed_damo_sees_no_damon_sysfs_and_writes_nothing_there() {
        let damon = Path::new("/sys/kernel/mm/damon");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !damon.is_dir() {
            eprintln!("skipped: the sandbox only acts for root on a kernel with DAMON sysfs");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, "#!/bin/sh\nls -A /sys/kernel/mm/damon | wc -l\necho $1 > /sys/kernel/mm/damon/damo-trace-sandbox-probe\n").unwrap();
        std::fs::set_permissions(&probe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let script = dir.path().join("sandboxed");
        std::fs::write(&script, sandbox_script(&probe)).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = Command::new(&script).arg("written").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "damo must see an empty DAMON sysfs");
        assert!(!damon.join("damo-trace-sandbox-probe").exists(), "the write reached the machine's DAMON sysfs");
        assert!(damon.join("admin").is_dir(), "the machine's DAMON sysfs is still there outside the sandbox");
    }
}
