//! Samples as a speedscope file (<https://www.speedscope.app/file-format-schema.json>): one
//! "sampled" profile per thread with its samples in time order, so speedscope's time-ordered
//! view shows the phases a thread went through.

use std::collections::HashMap;

use damo_record::model::{Module, StackSample};
use serde::{Deserialize, Serialize};

use crate::{
    pprof::KERNEL_MAPPING,
    stacks::{FrameAt, Namer},
};

pub const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub shared: Shared,
    pub profiles: Vec<SampledProfile>,
    pub name: String,
    pub active_profile_index: usize,
    pub exporter: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    pub frames: Vec<Frame>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in `file` when it is a source file (the binary had line information).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampledProfile {
    /// Always "sampled".
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub unit: String,
    pub start_value: u64,
    pub end_value: u64,
    /// Per sample, indices into `shared.frames`, outermost first.
    pub samples: Vec<Vec<usize>>,
    pub weights: Vec<u64>,
}

/// Builds a file of `samples` (of a record whose files are `modules`) taken every
/// `period_ns`; `name` says what was selected.
///
/// Each sample weighs one sampling period, as in the pprof export: a cpu-clock sample stands
/// for the CPU time it took to come, whatever the wall time to the thread's next sample (the
/// gap to it, used before, overstated CPU time by 17–32 % when threads waited for a CPU). A
/// thread's values start at its first sample's time (0 is the first sample of all threads).
pub fn build(modules: &[Module], samples: &[&StackSample], namer: &mut Namer, period_ns: u64, name: &str) -> File {
    let mut frames = Frames::default();
    let mut by_tid: Vec<(u32, Vec<&StackSample>)> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    for &s in samples {
        let i = *index.entry(s.tid).or_insert_with(|| {
            by_tid.push((s.tid, Vec::new()));
            by_tid.len() - 1
        });
        by_tid[i].1.push(s);
    }
    let origin = samples.iter().map(|s| s.ts_ns).min().unwrap_or(0);
    let profiles = by_tid
        .into_iter()
        .map(|(tid, mut thread)| {
            thread.sort_by_key(|s| s.ts_ns);
            let weights = vec![period_ns; thread.len()];
            let stacks = thread.iter().map(|s| frames.stack(modules, namer, s)).collect();
            let start_value = thread[0].ts_ns - origin;
            SampledProfile {
                kind: "sampled".into(),
                name: format!("{} ({tid})", thread[0].comm),
                unit: "nanoseconds".into(),
                start_value,
                end_value: start_value + weights.iter().sum::<u64>(),
                samples: stacks,
                weights,
            }
        })
        .collect();
    File { schema: SCHEMA.into(), shared: Shared { frames: frames.list }, profiles, name: name.into(), active_profile_index: 0, exporter: concat!("damo-trace ", env!("CARGO_PKG_VERSION")).into() }
}

/// `shared.frames`, each (name, file, line) once.
#[derive(Default)]
struct Frames {
    list: Vec<Frame>,
    index: HashMap<Frame, usize>,
}

impl Frames {
    fn get(&mut self, frame: Frame) -> usize {
        if let Some(&i) = self.index.get(&frame) {
            return i;
        }
        self.list.push(frame.clone());
        self.index.insert(frame, self.list.len() - 1);
        self.list.len() - 1
    }

    /// A sample's frame indices, outermost first; kernel names keep FlameGraph's `_[k]` so
    /// the flame chart tells them apart without looking at the file.
    fn stack(&mut self, modules: &[Module], namer: &mut Namer, s: &StackSample) -> Vec<usize> {
        let mut stack = Vec::new();
        for f in namer.frames(s).iter().rev() {
            let object = match f.at {
                FrameAt::User { module, .. } => modules.get(module as usize).map(|m| m.path.display().to_string()),
                FrameAt::Unknown(_) => None,
                FrameAt::Jit { pid, .. } => Some(format!("/tmp/perf-{pid}.map")),
                FrameAt::Kernel(_) => Some(KERNEL_MAPPING.to_owned()),
            };
            // The source file and line where the binary has them, else the object.
            for (name, source) in f.names.iter().zip(f.lines.iter()) {
                let (file, line) = match source {
                    Some(s) => (Some(s.file.to_string()), Some(s.line)),
                    None => (object.clone(), None),
                };
                stack.push(self.get(Frame { name: name.to_string(), file, line }));
            }
        }
        if stack.is_empty() {
            stack.push(self.get(Frame { name: "[no stack]".into(), file: None, line: None }));
        }
        stack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::Record;

    const HOT: u64 = 0xffff_ffff_8100_1000;
    const CALLER: u64 = 0xffff_ffff_8100_3000;

    fn sample(ts_ns: u64, tid: u32, kernel: Vec<u64>) -> StackSample {
        StackSample { ts_ns, pid: 7, tid, cpu: 0, comm: "t".into(), user: vec![], kernel }
    }

    #[test]
    fn one_time_ordered_profile_per_thread() {
        let rec = Record {
            // tid 8's samples come out of order; tid 7 sleeps between its 2nd and 3rd.
            samples: vec![sample(1_000, 7, vec![HOT, CALLER]), sample(1_500, 8, vec![CALLER]), sample(1_200, 8, vec![HOT, CALLER]), sample(2_000, 7, vec![CALLER]), sample(9_000, 7, vec![])],
            kernel_symbols: vec![(HOT, "hot_function".into()), (CALLER, "caller".into())],
            ..Default::default()
        };
        let mut namer = Namer::new(&rec, &[]);
        let samples: Vec<&StackSample> = rec.samples.iter().collect();
        let f = build(&rec.modules, &samples, &mut namer, 1_000, "all samples");
        let names: Vec<&str> = f.shared.frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["caller_[k]", "hot_function_[k]", "[no stack]"]);
        assert_eq!(f.shared.frames[0].file.as_deref(), Some(KERNEL_MAPPING));

        assert_eq!(f.profiles.len(), 2);
        let (t7, t8) = (&f.profiles[0], &f.profiles[1]);
        assert_eq!((t7.name.as_str(), t7.start_value, t7.end_value), ("t (7)", 0, 3_000));
        assert_eq!(t7.samples, [vec![0, 1], vec![0], vec![2]]);
        assert_eq!(t7.weights, [1_000; 3], "one period each, not the gap to the next sample (7 periods after the 2nd)");
        assert_eq!((t8.name.as_str(), t8.start_value, t8.end_value), ("t (8)", 200, 2_200));
        assert_eq!(t8.samples, [vec![0, 1], vec![0]], "in time order");
        assert_eq!(t8.weights, [1_000, 1_000], "samples 300 ns apart still weigh a period each");

        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["$schema"], SCHEMA);
        assert_eq!(json["activeProfileIndex"], 0);
        assert_eq!(json["profiles"][0]["type"], "sampled");
        assert_eq!(json["profiles"][1]["startValue"], 200);
        assert!(json["shared"]["frames"][2].get("file").is_none(), "no file for [no stack]");
        assert_eq!(serde_json::from_value::<File>(json).unwrap(), f);
    }
}
