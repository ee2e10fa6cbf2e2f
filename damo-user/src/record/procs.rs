//! What recording reads from /proc beside the events, about once a second, as damo's
//! `--do_record mem_footprint vmas proc_stats` does: memory footprints of the recorded
//! processes and of the system, their mappings (only when they changed), and CPU times of
//! the processes and of the kdamonds.
//!
//! The recorded processes are the target and, when children are followed, its descendants
//! (found through `/proc/<pid>/task/<tid>/children`), plus processes that DAMON targets by pid.
//! A process that exited is left out of a sample; that is not an error.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use anyhow::Result;
use damo_record::model::{FootprintSnapshot, ProcStatSample, ProcessFootprint, Vma, VmaSnapshot};

use super::output::RecordOutput;
use crate::procfs;

/// Which of damo's /proc samples to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSampling {
    /// `/proc/<pid>/statm` and `/proc/meminfo` (damo's `mem_footprint`).
    pub footprints: bool,
    /// `/proc/<pid>/maps` (damo's `vmas`).
    pub vmas: bool,
    /// `/proc/<pid>/stat` of the processes and the kdamonds (damo's `proc_stats`).
    pub stats: bool,
}

impl Default for ProcSampling {
    /// Everything, as damo records by default.
    fn default() -> Self {
        Self { footprints: true, vmas: true, stats: true }
    }
}

impl ProcSampling {
    pub fn any(&self) -> bool {
        self.footprints || self.vmas || self.stats
    }
}

/// A process tree larger than this is sampled only up to it: sampling must stay cheap.
const MAX_PROCESSES: usize = 4096;

pub struct ProcSampler {
    proc_root: PathBuf,
    what: ProcSampling,
    /// Processes recorded with their descendants (when `follow`).
    roots: Vec<u32>,
    follow: bool,
    kdamonds: Vec<u32>,
    /// Each process's mappings as last written, to write only changes.
    last_vmas: HashMap<u32, Vec<Vma>>,
    page_size: u64,
    ticks_per_s: u64,
}

impl ProcSampler {
    /// `proc_root` is `/proc` but for tests.
    pub fn new(proc_root: &Path, what: ProcSampling, roots: Vec<u32>, follow: bool, kdamonds: Vec<u32>) -> Self {
        // SAFETY: sysconf has no preconditions.
        let (page_size, ticks) = unsafe { (libc::sysconf(libc::_SC_PAGESIZE), libc::sysconf(libc::_SC_CLK_TCK)) };
        Self {
            proc_root: proc_root.to_path_buf(),
            what,
            roots,
            follow,
            kdamonds,
            last_vmas: HashMap::new(),
            page_size: u64::try_from(page_size).unwrap_or(4096),
            ticks_per_s: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
        }
    }

    /// Reads what is asked for, stamped `ts_ns` (CLOCK_MONOTONIC, like the events), into
    /// `output`. Only writing can fail.
    pub fn sample(&mut self, ts_ns: u64, output: &mut dyn RecordOutput) -> Result<()> {
        let pids = self.processes();
        if self.what.footprints {
            let system = procfs::system_memory(&self.proc_root).ok();
            let processes = pids
                .iter()
                .filter_map(|&pid| {
                    let f = procfs::footprint(&self.proc_root, pid).ok()?;
                    Some(ProcessFootprint { pid, vsz: f.vsz, rss: f.rss, shared: f.shared, text: f.text, data: f.data })
                })
                .collect();
            output.footprints(&FootprintSnapshot { ts_ns, system, processes })?;
        }
        if self.what.vmas {
            let mut changed = Vec::new();
            for &pid in &pids {
                let Ok(vmas) = procfs::vmas(&self.proc_root, pid) else { continue };
                if self.last_vmas.get(&pid) != Some(&vmas) {
                    changed.push(VmaSnapshot { ts_ns, pid, vmas: vmas.clone() });
                    self.last_vmas.insert(pid, vmas);
                }
            }
            // Forget processes that left (a reused pid starts afresh).
            self.last_vmas.retain(|pid, _| pids.contains(pid));
            if !changed.is_empty() {
                output.vmas(&changed)?;
            }
        }
        if self.what.stats {
            let stats: Vec<ProcStatSample> = pids.iter().chain(&self.kdamonds).filter_map(|&pid| self.stat(ts_ns, pid)).collect();
            if !stats.is_empty() {
                output.proc_stats(&stats)?;
            }
        }
        Ok(())
    }

    fn stat(&self, ts_ns: u64, pid: u32) -> Option<ProcStatSample> {
        let text = std::fs::read_to_string(self.proc_root.join(format!("{pid}/stat"))).ok()?;
        let s = procfs::parse_stat(&text).ok()?;
        // `pid (comm) state …`: the name may hold parentheses, so up to the last ')'.
        let comm = text.split_once('(').and_then(|(_, rest)| rest.rsplit_once(')')).map_or("", |(comm, _)| comm);
        let ns = |ticks: u64| (u128::from(ticks) * 1_000_000_000 / u128::from(self.ticks_per_s)) as u64;
        Some(ProcStatSample { ts_ns, pid, comm: comm.to_string(), utime_ns: ns(s.utime_ticks), stime_ns: ns(s.stime_ticks), nr_threads: s.nr_threads, rss: s.rss_pages * self.page_size })
    }

    /// The roots that are alive and, when following, their descendants; roots first.
    fn processes(&self) -> Vec<u32> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for &root in &self.roots {
            if self.proc_root.join(root.to_string()).exists() && seen.insert(root) {
                out.push(root);
            }
        }
        let mut next = 0;
        while self.follow && next < out.len() && out.len() < MAX_PROCESSES {
            let pid = out[next];
            next += 1;
            for child in self.children(pid) {
                if out.len() < MAX_PROCESSES && seen.insert(child) {
                    out.push(child);
                }
            }
        }
        out
    }

    /// Children of every thread of `pid` (needs CONFIG_PROC_CHILDREN; none without).
    fn children(&self, pid: u32) -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir(self.proc_root.join(format!("{pid}/task"))) else { return Vec::new() };
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::record::output::Losses;

    #[derive(Default)]
    struct Samples {
        footprints: Vec<FootprintSnapshot>,
        vmas: Vec<VmaSnapshot>,
        stats: Vec<ProcStatSample>,
    }

    impl RecordOutput for Samples {
        fn footprints(&mut self, s: &FootprintSnapshot) -> Result<()> {
            self.footprints.push(s.clone());
            Ok(())
        }
        fn vmas(&mut self, v: &[VmaSnapshot]) -> Result<()> {
            self.vmas.extend_from_slice(v);
            Ok(())
        }
        fn proc_stats(&mut self, s: &[ProcStatSample]) -> Result<()> {
            self.stats.extend_from_slice(s);
            Ok(())
        }
    }

    /// A fake /proc: process 10 with child 11 (through thread 12's children file), a
    /// kdamond 99, and the system's meminfo.
    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let write = |path: &str, text: &str| {
            let path = p.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("meminfo", "MemTotal: 1000 kB\nMemFree: 400 kB\nMemAvailable: 600 kB\nBuffers: 10 kB\nCached: 100 kB\n");
        for (pid, rss) in [(10, 50), (11, 20)] {
            write(&format!("{pid}/statm"), &format!("100 {rss} 5 2 0 30 0\n"));
            write(&format!("{pid}/maps"), "55d0a000-55d0b000 r-xp 00001000 08:01 1234 /usr/bin/app\n7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]\n");
            write(&format!("{pid}/stat"), &format!("{pid} (my (app)) S 1 1 1 0 -1 0 0 0 0 0 300 50 0 0 20 0 2 0 1 1 {rss}\n"));
            write(&format!("{pid}/task/{pid}/children"), "");
        }
        write("10/task/12/children", "11 ");
        write("99/stat", "99 (kdamond.0) S 2 0 0 0 -1 0 0 0 0 0 0 7 0 0 20 0 1 0 1 0 0\n");
        dir
    }

    #[test]
    fn samples_the_tree_the_system_and_kdamonds() {
        let proc = fake_proc();
        let mut sampler = ProcSampler::new(proc.path(), ProcSampling::default(), vec![10, 404], true, vec![99]);
        let (page, tck) = (sampler.page_size, sampler.ticks_per_s);
        let mut out = Samples::default();
        sampler.sample(1_000, &mut out).unwrap();
        let f = &out.footprints[0];
        assert_eq!(f.ts_ns, 1_000);
        assert_eq!(f.system, Some(procfs::SystemMemory { total: 1_024_000, free: 409_600, available: 614_400, buffers: 10_240, cached: 102_400 }));
        let rss: Vec<(u32, u64)> = f.processes.iter().map(|p| (p.pid, p.rss)).collect();
        assert_eq!(rss, [(10, 50 * page), (11, 20 * page)], "the child is found, the dead root 404 is not");
        assert_eq!(out.vmas.iter().map(|v| v.pid).collect::<Vec<_>>(), [10, 11]);
        assert_eq!(out.vmas[0].vmas[1], Vma { start: 0x7ffd1000, end: 0x7ffd2000, perms: "rw-p".into(), offset: 0, name: "[stack]".into() });
        let stats: Vec<(u32, &str)> = out.stats.iter().map(|s| (s.pid, s.comm.as_str())).collect();
        assert_eq!(stats, [(10, "my (app)"), (11, "my (app)"), (99, "kdamond.0")]);
        assert_eq!(out.stats[0].utime_ns, 300 * 1_000_000_000 / tck);
        assert_eq!(out.stats[2].stime_ns, 7 * 1_000_000_000 / tck);

        // Unchanged mappings are not written again; changed ones are.
        fs::write(proc.path().join("11/maps"), "1000-3000 rw-p 00000000 00:00 0\n").unwrap();
        sampler.sample(2_000, &mut out).unwrap();
        assert_eq!(out.footprints.len(), 2);
        assert_eq!(out.vmas.len(), 3);
        assert_eq!((out.vmas[2].ts_ns, out.vmas[2].pid, out.vmas[2].vmas.len()), (2_000, 11, 1));
        assert_eq!(out.stats.len(), 6);
    }

    #[test]
    fn without_following_only_the_root() {
        let proc = fake_proc();
        let what = ProcSampling { footprints: true, vmas: false, stats: false };
        let mut sampler = ProcSampler::new(proc.path(), what, vec![10], false, vec![99]);
        let mut out = Samples::default();
        sampler.sample(1, &mut out).unwrap();
        assert_eq!(out.footprints[0].processes.iter().map(|p| p.pid).collect::<Vec<_>>(), [10]);
        assert!(out.vmas.is_empty() && out.stats.is_empty());
    }

    #[test]
    fn samples_this_process_from_the_real_proc() {
        let me = std::process::id();
        let mut sampler = ProcSampler::new(Path::new("/proc"), ProcSampling::default(), vec![me], true, Vec::new());
        let mut out = Samples::default();
        sampler.sample(damo_record::clock::monotonic_ns(), &mut out).unwrap();
        let f = &out.footprints[0];
        assert!(f.system.is_some_and(|m| m.total > 0));
        assert!(f.processes.iter().any(|p| p.pid == me && p.rss > 0 && p.vsz >= p.rss), "{f:?}");
        assert!(out.vmas[0].vmas.iter().any(|v| v.perms.contains('x')));
        let stat = out.stats.iter().find(|s| s.pid == me).expect("a stat of this process");
        assert!(stat.nr_threads >= 1 && stat.rss > 0 && !stat.comm.is_empty(), "{stat:?}");
    }

    #[test]
    fn the_record_file_keeps_what_was_sampled() {
        let proc = fake_proc();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.dtr");
        let mut file = crate::record::file::RecordFile::create(&path, 0o600, false, HashMap::new()).unwrap();
        let mut sampler = ProcSampler::new(proc.path(), ProcSampling::default(), vec![10], true, vec![99]);
        let mut expected = Samples::default();
        for ts in [1, 2] {
            sampler.sample(ts, &mut file).unwrap();
        }
        ProcSampler::new(proc.path(), ProcSampling::default(), vec![10], true, vec![99]).sample(1, &mut expected).unwrap();
        file.finish(&Losses::default()).unwrap();
        let read = damo_record::native::read(&fs::read(&path).unwrap()).unwrap();
        assert!(read.complete);
        assert_eq!(read.record.footprints.len(), 2);
        assert_eq!(read.record.footprints[0], expected.footprints[0]);
        assert_eq!(read.record.vmas, expected.vmas, "unchanged mappings are written once");
        assert_eq!(read.record.proc_stats.len(), 6);
        assert_eq!(read.record.proc_stats[..3], expected.stats[..]);
    }
}
