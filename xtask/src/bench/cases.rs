//! The reports the benchmark times, as damo and damo-trace spell them.

use std::path::Path;

pub struct Case {
    pub name: &'static str,
    /// Arguments after `report`, before the input option.
    args: Vec<String>,
}

impl Case {
    pub fn damo_args(&self, input: &Path) -> Vec<String> {
        let mut v = vec!["report".to_owned(), self.args[0].clone()];
        // damo's `report times` takes two inputs (the second is a profile record it ignores).
        if self.args[0] == "times" {
            v.extend(["--inputs".into(), input.display().to_string(), "unused".into()]);
        } else {
            v.extend(["--input".into(), input.display().to_string()]);
        }
        v.extend(self.args[1..].iter().cloned());
        v
    }

    /// `access` needs the record's intervals, which perf_script text does not have.
    pub fn reads(&self, format: &str) -> bool {
        !(self.args[0] == "access" && format == "perf_script")
    }

    pub fn ours_args(&self, input: &Path) -> Vec<String> {
        let mut v = vec!["report".to_owned(), self.args[0].clone(), "--input".into(), input.display().to_string()];
        v.extend(self.args[1..].iter().cloned());
        v
    }
}

fn case(name: &'static str, args: &[&str]) -> Case {
    Case { name, args: args.iter().map(|s| (*s).to_owned()).collect() }
}

pub fn all(last_snapshot: &str) -> Vec<Case> {
    vec![
        case("wss", &["wss"]),
        case("heatmap --output raw", &["heatmap", "--output", "raw"]),
        case("access (last snapshot)", &["access", "--snapshot_idx", last_snapshot, last_snapshot]),
        case("times --access_rate 50% 100%", &["times", "--access_rate", "50%", "100%"]),
    ]
}
