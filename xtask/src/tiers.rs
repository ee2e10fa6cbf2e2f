//! Which test targets belong to which tier, found by convention instead of a hand-kept list:
//! a test that cannot run everywhere is `#[ignore]`d with a reason naming its tier.
//!
//! - `#[ignore = "needs root…"]`: tier 2, run on the host as root;
//! - `#[ignore = "needs the project's VM…"]`: tier 3, run inside the VM;
//! - `#[ignore = "needs Apache Spark…"]`: the Spark tier (minutes of JVM and a 300 MB
//!   download: `cargo xtask test --skip-spark` skips it locally; CI runs it);
//! - any other `#[ignore]` is an error: such a test would silently never run.
//!
//! Targets are the `tests/*.rs` files of every workspace crate (cargo's convention; the
//! workspace declares no `[[test]]` of its own, which [`targets`] checks).

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Root,
    Vm,
    Spark,
}

/// A test target: its package and its name (`--test NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub package: String,
    pub test: String,
}

const ROOT_REASON: &str = "needs root";
const VM_REASON: &str = "needs the project's VM";
const SPARK_REASON: &str = "needs Apache Spark";

/// The test targets of `tier`, in a stable order.
pub fn targets(root: &Path, tier: Tier) -> Result<Vec<Target>> {
    let mut found = Vec::new();
    for entry in sorted_dir(root)? {
        let manifest = entry.join("Cargo.toml");
        let tests = entry.join("tests");
        if !manifest.is_file() || !tests.is_dir() {
            continue;
        }
        let text = fs::read_to_string(&manifest).with_context(|| format!("failed to read {}", manifest.display()))?;
        if text.contains("[[test]]") {
            bail!("{} declares [[test]] targets; tiers are found from tests/*.rs only", manifest.display());
        }
        let package = package_name(&text).with_context(|| format!("no package name in {}", manifest.display()))?;
        for file in sorted_dir(&tests)? {
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = fs::read_to_string(&file).with_context(|| format!("failed to read {}", file.display()))?;
            if classify(&source).with_context(|| format!("in {}", file.display()))? == Some(tier) {
                let test = file.file_stem().unwrap().to_string_lossy().into_owned();
                found.push(Target { package: package.clone(), test });
            }
        }
    }
    Ok(found)
}

/// The tier a test file's ignored tests ask for, if any. An `#[ignore]` naming none is an
/// error, and so are two tiers in one file: `--ignored` runs every ignored test of a target.
fn classify(source: &str) -> Result<Option<Tier>> {
    let mut found: Option<Tier> = None;
    for (at, _) in source.match_indices("#[ignore") {
        let attr = &source[at..];
        let attr = &attr[..attr.find(']').unwrap_or(attr.len())];
        let reason = attr.split_once('"').map(|(_, r)| r.trim_end_matches('"'));
        let tier = match reason {
            Some(r) if r.starts_with(ROOT_REASON) => Tier::Root,
            Some(r) if r.starts_with(VM_REASON) => Tier::Vm,
            Some(r) if r.starts_with(SPARK_REASON) => Tier::Spark,
            _ => bail!("`{attr}]` names no tier: give it a reason starting with \"{ROOT_REASON}\", \"{VM_REASON}\" or \"{SPARK_REASON}\", or it never runs"),
        };
        match found {
            Some(other) if other != tier => bail!("holds tests of two tiers ({other:?} and {tier:?}): `--ignored` would run both in one place"),
            _ => found = Some(tier),
        }
    }
    Ok(found)
}

fn package_name(manifest: &str) -> Option<String> {
    let package = &manifest[manifest.find("[package]")?..];
    let line = package.lines().find(|l| l.trim_start().starts_with("name"))?;
    Some(line.split_once('=')?.1.trim().trim_matches('"').to_owned())
}

fn sorted_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut entries: Vec<_> = fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_reasons_name_the_tier() {
        assert_eq!(classify("#[test]\n#[ignore = \"needs root: loads eBPF\"]\nfn a() {}").unwrap(), Some(Tier::Root));
        assert_eq!(classify("#[ignore = \"needs the project's VM: writes sysfs\"]\nfn b() {}").unwrap(), Some(Tier::Vm));
        assert_eq!(classify("#[ignore = \"needs Apache Spark: pyspark\"]\nfn s() {}").unwrap(), Some(Tier::Spark));
        assert_eq!(classify("#[test]\nfn plain() {}").unwrap(), None);
        let mixed = "#[ignore = \"needs root\"]\nfn a() {}\n#[ignore = \"needs the project's VM\"]\nfn b() {}";
        assert!(classify(mixed).unwrap_err().to_string().contains("two tiers"));
        for bad in ["#[ignore]\nfn c() {}", "#[ignore = \"slow\"]\nfn d() {}"] {
            let e = classify(bad).unwrap_err().to_string();
            assert!(e.contains("names no tier"), "{e}");
        }
    }

    #[test]
    fn the_workspace_has_root_and_vm_targets() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let root_targets = targets(root, Tier::Root).unwrap();
        assert!(root_targets.iter().any(|t| t.package == "damo-user" && t.test == "ebpf_smoke"), "{root_targets:?}");
        let vm = targets(root, Tier::Vm).unwrap();
        assert!(vm.iter().any(|t| t.test == "vm_damon"), "{vm:?}");
        let spark = targets(root, Tier::Spark).unwrap();
        assert!(spark.iter().any(|t| t.test == "report_fleet_spark"), "{spark:?}");
    }
}
