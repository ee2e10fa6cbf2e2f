//! A temporary directory only we can enter, for the records `show` and `monitor` report
//! through `report`: created fresh (never an existing path or a link), removed with the files
//! we named in it.

use std::{cell::RefCell, os::unix::fs::DirBuilderExt, path::PathBuf};

use anyhow::{bail, Context, Result};

pub struct PrivateDir {
    path: PathBuf,
    files: RefCell<Vec<PathBuf>>,
}

impl PrivateDir {
    pub fn create(what: &str) -> Result<Self> {
        let base = std::env::temp_dir();
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = base.join(format!("damo-trace-{what}-{}-{nanos:x}-{attempt}", std::process::id()));
            // create_dir fails on anything already there, links included: the directory is ours.
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path, files: RefCell::default() }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        bail!("cannot create a private directory under {}", base.display())
    }

    /// The path of a file in it, removed with it.
    pub fn file(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        self.files.borrow_mut().push(path.clone());
        path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        for file in self.files.borrow().iter() {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
