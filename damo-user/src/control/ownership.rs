//! Which kdamonds damo-trace started: "index pid" lines in a state file under /run (gone at
//! reboot, like the kdamonds). A kdamond is ours only while both match: one restarted by
//! someone else has a new pid and is not ours any more.

use std::{io, path::PathBuf};

pub struct Ownership {
    path: PathBuf,
}

impl Ownership {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn entries(&self) -> Vec<(usize, u32)> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (idx, pid) = l.split_once(' ')?;
                Some((idx.trim().parse().ok()?, pid.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn is_ours(&self, idx: usize, pid: Option<u32>) -> bool {
        pid.is_some_and(|pid| self.entries().contains(&(idx, pid)))
    }

    /// Indices we started, whatever their pid now.
    pub fn indices(&self) -> Vec<usize> {
        self.entries().into_iter().map(|(i, _)| i).collect()
    }

    pub fn replace(&self, entries: &[(usize, u32)]) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text: String = entries.iter().map(|(i, p)| format!("{i} {p}\n")).collect();
        // Written whole and renamed, so a crash never leaves half a file.
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, &self.path)
    }
}
