//! Access to DAMON's sysfs admin tree. The root is a parameter and writes go through one
//! small trait, so unit tests run the controller against an in-memory fake kernel and check
//! the exact write sequence.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

/// Paths are relative to the admin directory (`/sys/kernel/mm/damon/admin`).
pub trait Tree {
    fn read(&self, path: &str) -> io::Result<String>;
    fn write(&self, path: &str, value: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> bool;

    /// The full path, for messages.
    fn location(&self, path: &str) -> String {
        path.to_owned()
    }

    /// How many numbered entries (`0`, `1`, …) a directory has.
    fn read_dir_count(&self, path: &str) -> usize {
        (0..).take_while(|i| self.exists(&format!("{path}/{i}"))).count()
    }
}

pub const ADMIN: &str = "/sys/kernel/mm/damon/admin";

/// The real sysfs (or any directory shaped like it).
pub struct SysfsTree {
    root: PathBuf,
}

impl SysfsTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Tree for SysfsTree {
    fn read(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(self.root.join(path)).map(|s| s.trim_end().to_owned())
    }

    fn write(&self, path: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.root.join(path), value)
    }

    fn exists(&self, path: &str) -> bool {
        self.root.join(path).exists()
    }

    fn location(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }
}

/// A failed read of `path` as one clear error: permission problems say so and what helps.
pub fn read_error(tree: &dyn Tree, path: &str, e: io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => anyhow::anyhow!("permission denied reading {}: DAMON's sysfs files are readable by root only (run it with sudo)", tree.location(path)),
        _ => anyhow::Error::new(e).context(format!("failed to read {}", tree.location(path))),
    }
}

/// `nr_kdamonds`: 0 when DAMON's sysfs is missing, an error when it cannot be read.
pub fn nr_kdamonds(tree: &dyn Tree) -> anyhow::Result<usize> {
    const PATH: &str = "kdamonds/nr_kdamonds";
    match tree.read(PATH) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(read_error(tree, PATH, e)),
    }
}

/// A write that names what failed; EBUSY gets its own variant because it has a known cause.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the kernel is busy with {path} (EBUSY)")]
    Busy { path: String },
    #[error("failed to write {value:?} to {path}: {source}")]
    Io { path: String, value: String, source: io::Error },
}

pub fn write(tree: &dyn Tree, path: &str, value: &str) -> Result<(), WriteError> {
    tree.write(path, value).map_err(|source| {
        if source.raw_os_error() == Some(libc::EBUSY) {
            WriteError::Busy { path: path.to_owned() }
        } else {
            WriteError::Io { path: path.to_owned(), value: value.to_owned(), source }
        }
    })
}

/// Writes a kdamond's `state`, retrying a transient EBUSY (the kdamond is still handling
/// the previous command) with backoff.
pub fn write_state(tree: &dyn Tree, kdamond: usize, command: &str) -> Result<(), WriteError> {
    let path = format!("kdamonds/{kdamond}/state");
    let mut delay = Duration::from_millis(20);
    for _ in 0..6 {
        match write(tree, &path, command) {
            Err(WriteError::Busy { .. }) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    write(tree, &path, command)
}

pub fn read_u64(tree: &dyn Tree, path: &str) -> Option<u64> {
    tree.read(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
pub mod fake {
    //! An in-memory DAMON sysfs that behaves like the kernel where the controller relies on
    //! it: `nr_kdamonds` is refused (EBUSY) while a kdamond runs and drops every kdamond's
    //! files; `state` on/off starts and stops a kdamond with a pid.

    use std::{cell::RefCell, collections::BTreeMap, io};

    use super::Tree;

    #[derive(Default)]
    pub struct FakeKernel {
        pub files: RefCell<BTreeMap<String, String>>,
        pub writes: RefCell<Vec<(String, String)>>,
        /// Files that exist without having been written (kernel features).
        pub features: Vec<String>,
    }

    impl FakeKernel {
        pub fn new() -> Self {
            let k = Self { features: vec!["kdamonds/0/contexts/0/schemes/0/apply_interval_us".into()], ..Default::default() };
            k.files.borrow_mut().insert("kdamonds/nr_kdamonds".into(), "0".into());
            k
        }

        /// A kdamond someone else started, at index `idx`.
        pub fn foreign_running(&self, idx: usize, pid: u32) {
            let mut f = self.files.borrow_mut();
            f.insert("kdamonds/nr_kdamonds".into(), (idx + 1).to_string());
            f.insert(format!("kdamonds/{idx}/state"), "on".into());
            f.insert(format!("kdamonds/{idx}/pid"), pid.to_string());
        }

        pub fn written(&self) -> Vec<String> {
            self.writes.borrow().iter().map(|(p, v)| format!("{p}={v}")).collect()
        }

        fn running(&self) -> bool {
            self.files.borrow().iter().any(|(p, v)| p.ends_with("/state") && v == "on")
        }
    }

    impl Tree for FakeKernel {
        fn read(&self, path: &str) -> io::Result<String> {
            self.files.borrow().get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn write(&self, path: &str, value: &str) -> io::Result<()> {
            if path == "kdamonds/nr_kdamonds" {
                if self.running() {
                    return Err(io::Error::from_raw_os_error(libc::EBUSY));
                }
                self.files.borrow_mut().retain(|p, _| !p.starts_with("kdamonds/") || p == "kdamonds/nr_kdamonds");
            }
            self.writes.borrow_mut().push((path.to_owned(), value.to_owned()));
            let mut files = self.files.borrow_mut();
            if let Some(idx) = path.strip_prefix("kdamonds/").and_then(|p| p.strip_suffix("/state")) {
                let pid_path = format!("kdamonds/{idx}/pid");
                match value {
                    "on" => {
                        files.insert(pid_path, (4000 + idx.parse::<u32>().unwrap_or(0)).to_string());
                    }
                    "off" => {
                        files.insert(pid_path, "-1".into());
                    }
                    _ => return Ok(()), // commands keep the state
                }
            }
            files.insert(path.to_owned(), value.to_owned());
            Ok(())
        }

        fn exists(&self, path: &str) -> bool {
            self.files.borrow().contains_key(path) || self.features.iter().any(|f| f == path)
        }
    }
}
