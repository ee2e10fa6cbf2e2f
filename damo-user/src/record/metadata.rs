//! What a record says about how it was made (`damo_record::model::Metadata`).

use damo_record::model::Metadata;

use super::Plan;

/// The metadata of a recording of `plan` that starts now.
pub fn of(plan: &Plan) -> Metadata {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    Metadata {
        recorder: concat!("damo-trace ", env!("CARGO_PKG_VERSION")).into(),
        command_line: std::env::args().collect(),
        hostname: read("/proc/sys/kernel/hostname"),
        kernel_release: read("/proc/sys/kernel/osrelease"),
        nr_cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        sample_hz: if plan.target.is_some() { plan.sample_hz } else { 0 },
        realtime_offset_ns: Some(damo_record::clock::realtime_offset_ns()),
        damon: plan.start_damon.as_ref().and_then(|doc| serde_json::to_value(doc).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_offset_turns_monotonic_times_into_today() {
        let plan = Plan {
            target: None,
            user: None,
            kdamond_pids: Vec::new(),
            monitored_pids: Vec::new(),
            sample_hz: 99,
            call_graph: Default::default(),
            follow_children: true,
            timeout: None,
            start_damon: None,
            schemes_target_regions: false,
            proc_samples: Default::default(),
            keep_running: false,
        };
        let m = of(&plan);
        assert_eq!(m.sample_hz, 0, "nothing is sampled without a target");
        let mono = damo_record::clock::monotonic_ns() as i64;
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        assert!((mono + m.realtime_offset_ns.unwrap() - wall).abs() < 1_000_000_000, "more than a second off");
        assert!(m.recorder.starts_with("damo-trace ") && m.nr_cpus > 0 && !m.kernel_release.is_empty());
    }
}
