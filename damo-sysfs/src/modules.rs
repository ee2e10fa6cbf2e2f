//! The DAMON kernel modules (DAMON_RECLAIM, DAMON_LRU_SORT, DAMON_STAT): built into the
//! kernel or loaded, each runs its own kdamond (not one of sysfs's) and is controlled through
//! `/sys/module/damon_<name>/parameters`, as damo's `module`, `reclaim` and `lru_sort` do.
//!
//! Reading never writes. Writing is only ever asked for by the user's own `reclaim`,
//! `lru_sort` or `module … write` command: a parameter name must be a plain file name that
//! already exists (no path, no symlink followed, nothing created).

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

/// Where the kernel lists its modules' parameters.
pub const SYS_MODULE: &str = "/sys/module";

/// The modules damo-trace knows by name, as damo's commands name them.
pub const KNOWN: [&str; 3] = ["reclaim", "lru_sort", "stat"];

/// The parameters DAMON_RECLAIM and DAMON_LRU_SORT share: watermarks and DAMON's
/// monitoring attributes.
const MONITORING_PARAMS: [&str; 10] =
    ["wmarks_interval", "wmarks_high", "wmarks_mid", "wmarks_low", "sample_interval", "aggr_interval", "min_nr_regions", "max_nr_regions", "monitor_region_start", "monitor_region_end"];

/// The parameters damo's `reclaim status` and `lru_sort status` print, in its order: those of
/// the first release, then later additions (DAMON_RECLAIM's stats in 5.17, skip_anon in 6.3,
/// the quota goals in 6.9). Other modules: none.
pub fn status_params(name: &str) -> Vec<&'static str> {
    let (head, tail): (&[&'static str], &[&'static str]) = match name {
        "reclaim" => (
            &["kdamond_pid", "enabled", "min_age", "quota_ms", "quota_sz", "quota_reset_interval_ms"],
            &[
                "nr_reclaim_tried_regions",
                "nr_reclaimed_regions",
                "bytes_reclaim_tried_regions",
                "bytes_reclaimed_regions",
                "nr_quota_exceeds",
                "skip_anon",
                "quota_mem_pressure_us",
                "quota_autotune_feedback",
            ],
        ),
        "lru_sort" => (
            &["kdamond_pid", "enabled", "hot_thres_access_freq", "cold_min_age", "quota_ms", "quota_reset_interval_ms"],
            &[
                "nr_lru_sort_tried_hot_regions",
                "nr_lru_sorted_hot_regions",
                "bytes_lru_sort_tried_hot_regions",
                "bytes_lru_sorted_hot_regions",
                "nr_lru_sort_tried_cold_regions",
                "nr_lru_sorted_cold_regions",
                "bytes_lru_sort_tried_cold_regions",
                "bytes_lru_sorted_cold_regions",
            ],
        ),
        _ => return Vec::new(),
    };
    head.iter().chain(&MONITORING_PARAMS).chain(tail).copied().collect()
}

/// How long `enable`/`disable`/`commit` wait for the kernel (damo waits without end). A
/// module whose watermarks keep its scheme inactive takes new inputs only at each watermark
/// check (every 5 s by default).
const WAIT: Duration = Duration::from_secs(30);
/// Far above any parameter (DAMON_STAT's 101 percentiles are about 1 KiB).
const MAX_VALUE: u64 = 64 * 1024;

/// One module's state, as `status` and `sysinfo` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// damo's name: reclaim, lru_sort, stat.
    pub name: String,
    /// Whether the kernel has it (its parameters directory exists).
    pub present: bool,
    pub enabled: Option<bool>,
    /// The module's own kdamond, while it runs (its `kdamond_pid` parameter).
    pub kdamond_pid: Option<u32>,
    /// Why the parameters could not be read (not root), if so.
    pub error: Option<String>,
}

impl Status {
    /// DAMON_RECLAIM and so on, as the kernel's documentation names them.
    pub fn title(&self) -> String {
        format!("DAMON_{}", self.name.to_uppercase())
    }
}

/// The modules' parameters under a root (`/sys/module`; a temporary directory in tests).
pub struct Modules {
    root: PathBuf,
}

impl Modules {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn system() -> Self {
        Self::new(SYS_MODULE)
    }

    /// `<root>/damon_<name>/parameters`; the name must be a plain word.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        check_word(name, "module name")?;
        Ok(self.root.join(format!("damon_{name}")).join("parameters"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir(name).is_ok_and(|d| d.is_dir())
    }

    /// The DAMON modules this kernel has (`damon_*` with parameters), known ones first.
    pub fn available(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix("damon_").map(str::to_owned)).filter(|n| self.exists(n)).collect())
            .unwrap_or_default();
        names.sort_by_key(|n| (KNOWN.iter().position(|k| k == n).unwrap_or(KNOWN.len()), n.clone()));
        names
    }

    /// One parameter's value, trimmed.
    pub fn read(&self, name: &str, param: &str) -> Result<String> {
        let path = self.param_path(name, param)?;
        let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path).map_err(|e| read_error(e, &path))?;
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(file, MAX_VALUE), &mut text).map_err(|e| read_error(e, &path))?;
        Ok(text.trim().to_owned())
    }

    /// Every parameter the module has, by name (write-only ones are left out).
    pub fn read_all(&self, name: &str) -> Result<Vec<(String, String)>> {
        let dir = self.existing_dir(name)?;
        let mut params: Vec<String> = fs::read_dir(&dir).with_context(|| format!("failed to list {}", dir.display()))?.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
        params.sort();
        let mut out = Vec::new();
        for p in params {
            match self.read(name, &p) {
                Ok(v) => out.push((p, v)),
                // A parameter the kernel made write-only (mode 0200) has nothing to show.
                Err(_) if self.param_path(name, &p).is_ok_and(|path| is_write_only(&path)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The parameters of `order` the module has, in that order (damo's `reclaim status`).
    pub fn read_listed(&self, name: &str, order: &[&str]) -> Result<Vec<(String, String)>> {
        let dir = self.existing_dir(name)?;
        order.iter().filter(|p| dir.join(p).is_file()).map(|p| Ok(((*p).to_owned(), self.read(name, p)?))).collect()
    }

    /// Whether the kernel has the module and, if so, whether it runs and as which kdamond.
    pub fn status(&self, name: &str) -> Status {
        let mut status = Status { name: name.to_owned(), present: self.exists(name), enabled: None, kdamond_pid: None, error: None };
        if !status.present {
            return status;
        }
        match self.enabled(name) {
            Ok(on) => status.enabled = Some(on),
            Err(e) => status.error = Some(format!("{e:#}")),
        }
        match self.kdamond_pid(name) {
            Ok(pid) => status.kdamond_pid = pid,
            Err(e) if status.error.is_none() => status.error = Some(format!("{e:#}")),
            Err(_) => {}
        }
        status
    }

    /// The status of every module this kernel has, and of the known ones it lacks.
    pub fn statuses(&self) -> Vec<Status> {
        let mut names: Vec<String> = KNOWN.iter().map(|&n| n.to_owned()).collect();
        names.extend(self.available().into_iter().filter(|n| !KNOWN.contains(&n.as_str())));
        names.iter().map(|n| self.status(n)).collect()
    }

    /// `enabled` (or `enable`, its older name) is Y.
    pub fn enabled(&self, name: &str) -> Result<bool> {
        Ok(self.read(name, self.enable_param(name)?)? == "Y")
    }

    /// The module's kdamond, while one runs; none when the module has no such parameter.
    pub fn kdamond_pid(&self, name: &str) -> Result<Option<u32>> {
        if !self.existing_dir(name)?.join("kdamond_pid").is_file() {
            return Ok(None);
        }
        let text = self.read(name, "kdamond_pid")?;
        let pid: i64 = text.parse().with_context(|| format!("damon_{name}'s kdamond_pid is {text:?}, not a pid"))?;
        Ok(u32::try_from(pid).ok().filter(|&p| p > 0))
    }

    /// Writes one existing parameter (root). The kernel checks the value; its refusal is
    /// reported with the parameter's name.
    pub fn write(&self, name: &str, param: &str, value: &str) -> Result<()> {
        let path = self.param_path(name, param)?;
        if !path.is_file() {
            bail!("damon_{name} has no parameter {param:?} ({} is missing)", path.display());
        }
        let mut file = fs::OpenOptions::new().write(true).truncate(true).custom_flags(libc::O_NOFOLLOW).open(&path).with_context(|| format!("failed to open {}", path.display()))?;
        file.write_all(value.as_bytes()).with_context(|| format!("the kernel refused {value:?} for damon_{name}'s {param}"))
    }

    /// Turns the module on or off, then waits until its kdamond runs or has stopped. Turning
    /// it on restarts it (off, then on) so that every parameter written before applies, as
    /// damo's `reclaim enable` does.
    pub fn enable(&self, name: &str, on: bool) -> Result<Option<u32>> {
        let param = self.enable_param(name)?;
        self.write(name, param, "N")?;
        self.wait(name, "stop", |pid| pid.is_none())?;
        if !on {
            return Ok(None);
        }
        self.write(name, param, "Y")?;
        self.wait(name, "start", |pid| pid.is_some())
    }

    /// Applies the parameters written while the module runs (`commit_inputs`), and waits
    /// until the kernel has taken them (it resets the file to N).
    pub fn commit(&self, name: &str) -> Result<()> {
        if self.kdamond_pid(name)?.is_none() && !self.enabled(name)? {
            bail!("damon_{name} is not running: its parameters apply when it is enabled");
        }
        if !self.existing_dir(name)?.join("commit_inputs").is_file() {
            bail!("this kernel's damon_{name} has no commit_inputs: disable and enable it to apply new parameters");
        }
        self.write(name, "commit_inputs", "Y")?;
        let start = Instant::now();
        while self.read(name, "commit_inputs")? == "Y" {
            if start.elapsed() > WAIT {
                bail!("damon_{name} did not take the new parameters within {} s (commit_inputs stayed Y); check dmesg", WAIT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn wait(&self, name: &str, what: &str, done: impl Fn(Option<u32>) -> bool) -> Result<Option<u32>> {
        // Without kdamond_pid (DAMON_STAT) there is nothing to wait for.
        if !self.existing_dir(name)?.join("kdamond_pid").is_file() {
            return Ok(None);
        }
        let start = Instant::now();
        loop {
            let pid = self.kdamond_pid(name)?;
            if done(pid) {
                return Ok(pid);
            }
            if start.elapsed() > WAIT {
                bail!("damon_{name}'s kdamond did not {what} within {} s; check the parameters and dmesg", WAIT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn enable_param(&self, name: &str) -> Result<&'static str> {
        let dir = self.existing_dir(name)?;
        ["enabled", "enable"].into_iter().find(|p| dir.join(p).is_file()).with_context(|| format!("damon_{name} has no enabled parameter ({})", dir.display()))
    }

    /// The module's parameters directory; an error naming the kernel option when it lacks one.
    pub fn existing_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir(name)?;
        if !dir.is_dir() {
            bail!("this kernel has no DAMON module {name:?} ({} is missing; it needs CONFIG_DAMON_{})", dir.display(), name.to_uppercase());
        }
        Ok(dir)
    }

    fn param_path(&self, name: &str, param: &str) -> Result<PathBuf> {
        check_word(param, "parameter name")?;
        Ok(self.existing_dir(name)?.join(param))
    }
}

/// Module and parameter names are plain words: nothing that could leave the directory.
fn check_word(word: &str, what: &str) -> Result<()> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("{word:?} is not a {what} (letters, digits and _ only)");
    }
    Ok(())
}

fn is_write_only(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o444 == 0)
}

fn read_error(e: io::Error, path: &Path) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => anyhow::anyhow!("permission denied reading {}: the DAMON modules' parameters are readable by root only (run it with sudo)", path.display()),
        Some(libc::ELOOP) => anyhow::anyhow!("refusing to read {}: it is a symlink", path.display()),
        _ => anyhow::Error::new(e).context(format!("failed to read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /sys/module with DAMON_RECLAIM (stopped) and a running DAMON_LRU_SORT.
    fn fake() -> (tempfile::TempDir, Modules) {
        let dir = tempfile::tempdir().unwrap();
        let params = |m: &str, kv: &[(&str, &str)]| {
            let d = dir.path().join(format!("damon_{m}/parameters"));
            fs::create_dir_all(&d).unwrap();
            for (k, v) in kv {
                fs::write(d.join(k), format!("{v}\n")).unwrap();
            }
        };
        params("reclaim", &[("enabled", "N"), ("kdamond_pid", "-1"), ("min_age", "120000000"), ("commit_inputs", "N"), ("quota_ms", "10")]);
        params("lru_sort", &[("enabled", "Y"), ("kdamond_pid", "77"), ("hot_thres_access_freq", "500")]);
        fs::create_dir_all(dir.path().join("damon_foo")).unwrap(); // no parameters: not a module to list
        fs::create_dir_all(dir.path().join("ext4/parameters")).unwrap();
        let m = Modules::new(dir.path());
        (dir, m)
    }

    #[test]
    fn status_reads_enabled_and_the_kdamond_pid() {
        let (_d, m) = fake();
        assert_eq!(m.available(), ["reclaim", "lru_sort"]);
        let s = m.statuses();
        let brief: Vec<(&str, bool, Option<bool>, Option<u32>)> = s.iter().map(|s| (s.name.as_str(), s.present, s.enabled, s.kdamond_pid)).collect();
        assert_eq!(brief, [("reclaim", true, Some(false), None), ("lru_sort", true, Some(true), Some(77)), ("stat", false, None, None)]);
        assert_eq!(s[1].title(), "DAMON_LRU_SORT");
        assert_eq!(
            m.read_listed("reclaim", &status_params("reclaim")).unwrap(),
            [("kdamond_pid".to_owned(), "-1".to_owned()), ("enabled".into(), "N".into()), ("min_age".into(), "120000000".into()), ("quota_ms".into(), "10".into())]
        );
        assert_eq!(m.read_all("lru_sort").unwrap().len(), 3);
    }

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        let (d, m) = fake();
        fs::write(d.path().join("secret"), "x").unwrap();
        for bad in ["../secret", "", "a/b", ".."] {
            assert!(m.read("reclaim", bad).is_err(), "{bad}");
            assert!(m.write("reclaim", bad, "1").is_err(), "{bad}");
        }
        assert!(m.read("../ext4", "x").is_err());
        let e = m.write("reclaim", "no_such_param", "1").unwrap_err().to_string();
        assert!(e.contains("no parameter"), "{e}");
        assert!(!d.path().join("damon_reclaim/parameters/no_such_param").exists(), "nothing is created");
        let e = format!("{:#}", m.read_all("stat").unwrap_err());
        assert!(e.contains("CONFIG_DAMON_STAT"), "{e}");
    }

    #[test]
    fn a_symlinked_parameter_is_neither_read_nor_written() {
        let (d, m) = fake();
        let outside = d.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, d.path().join("damon_reclaim/parameters/quota_sz")).unwrap();
        assert!(format!("{:#}", m.read("reclaim", "quota_sz").unwrap_err()).contains("symlink"));
        assert!(m.write("reclaim", "quota_sz", "1").is_err());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn reading_changes_nothing() {
        let (d, m) = fake();
        let snapshot = || {
            let mut files: Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> = Vec::new();
            for module in ["damon_reclaim", "damon_lru_sort"] {
                for e in fs::read_dir(d.path().join(module).join("parameters")).unwrap().flatten() {
                    files.push((e.path(), fs::read(e.path()).unwrap(), e.metadata().unwrap().modified().unwrap()));
                }
            }
            files.sort();
            files
        };
        let before = snapshot();
        let _ = (m.statuses(), m.read_all("reclaim"), m.read_listed("lru_sort", &status_params("lru_sort")));
        assert_eq!(before, snapshot());
    }

    #[test]
    fn disable_writes_n_and_waits_for_the_kdamond_to_stop() {
        let (d, m) = fake();
        // A fake kernel stops nothing by itself: the kdamond is gone already.
        let lru = d.path().join("damon_lru_sort/parameters");
        fs::write(lru.join("kdamond_pid"), "-1\n").unwrap();
        assert_eq!(m.enable("lru_sort", false).unwrap(), None);
        assert_eq!(fs::read_to_string(lru.join("enabled")).unwrap(), "N");
        let e = m.commit("reclaim").unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
    }
}
