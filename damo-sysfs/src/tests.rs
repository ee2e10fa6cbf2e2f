//! The controller against a fake kernel: exact write sequences, and the refusals that keep
//! other tools' kdamonds safe.

use super::{
    ownership::Ownership,
    params::{AccessPattern, Context, Document, Intervals, Kdamond, MinMax, NrRegions, PercentRange, Scheme, Target},
    tree::fake::FakeKernel,
    *,
};

/// What `start <pid> --damos_action pageout --damos_access_rate 0% 0% --damos_age 5s max`
/// asks for: damo's default intervals and regions, one pageout scheme.
pub(crate) fn doc(pid: u32) -> Document {
    let access_pattern = AccessPattern { nr_accesses: PercentRange { min: 0.0, max: 0.0 }, age: MinMax { min: 5_000_000, max: u64::MAX }, ..Default::default() };
    let scheme = Scheme { action: "pageout".into(), access_pattern, apply_interval_us: 0, quotas: Default::default(), watermarks: Default::default(), filters: Vec::new(), stats: None };
    let target = Target { pid: Some(pid), regions: Vec::new() };
    let context = Context { ops: "vaddr".into(), targets: vec![target], intervals: Intervals::default(), nr_regions: NrRegions::default(), schemes: vec![scheme] };
    Document { kdamonds: vec![Kdamond { contexts: vec![context], ..Default::default() }] }
}

fn owned() -> (tempfile::TempDir, Ownership) {
    let dir = tempfile::tempdir().unwrap();
    let o = Ownership::new(dir.path());
    (dir, o)
}

#[test]
fn start_writes_the_documented_sequence_and_notes_ownership() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    let started = start(&k, &o, &doc(1234)).unwrap();
    assert_eq!(started, [(0, 4000)]);
    let c = "kdamonds/0/contexts/0";
    let expected = [
        "kdamonds/nr_kdamonds=1".to_owned(),
        "kdamonds/0/contexts/nr_contexts=1".into(),
        format!("{c}/operations=vaddr"),
        format!("{c}/monitoring_attrs/intervals/sample_us=5000"),
        format!("{c}/monitoring_attrs/intervals/aggr_us=100000"),
        format!("{c}/monitoring_attrs/intervals/update_us=1000000"),
        format!("{c}/monitoring_attrs/nr_regions/min=10"),
        format!("{c}/monitoring_attrs/nr_regions/max=1000"),
        format!("{c}/targets/nr_targets=1"),
        format!("{c}/targets/0/pid_target=1234"),
        format!("{c}/targets/0/regions/nr_regions=0"),
        format!("{c}/schemes/nr_schemes=1"),
        format!("{c}/schemes/0/action=pageout"),
        format!("{c}/schemes/0/access_pattern/sz/min=0"),
        format!("{c}/schemes/0/access_pattern/sz/max=18446744073709551615"),
        format!("{c}/schemes/0/access_pattern/nr_accesses/min=0"),
        format!("{c}/schemes/0/access_pattern/nr_accesses/max=0"),
        // 5 s of 100 ms aggregation intervals; "max" saturates DAMON's u32.
        format!("{c}/schemes/0/access_pattern/age/min=50"),
        format!("{c}/schemes/0/access_pattern/age/max=4294967295"),
        format!("{c}/schemes/0/apply_interval_us=0"),
    ];
    let written = k.written();
    assert_eq!(&written[..expected.len()], &expected[..]);
    assert_eq!(written.last().unwrap(), "kdamonds/0/state=on");
    assert_eq!(o.entries().unwrap(), [(0, 4000)]);
}

#[test]
fn a_running_foreign_kdamond_is_refused_without_a_write() {
    let k = FakeKernel::new();
    k.foreign_running(0, 79);
    let (_d, o) = owned();
    let e = start(&k, &o, &doc(1)).unwrap_err().to_string();
    assert!(e.contains("kdamond 0 (pid 79)") && e.contains("EBUSY") && e.contains("--observe"), "{e}");
    assert!(k.written().is_empty(), "nothing may be written: {:?}", k.written());
    let e = stop(&k, &o, Some(&[0])).unwrap_err().to_string();
    assert!(e.contains("not started by damo-trace"), "{e}");
    assert!(stop(&k, &o, None).unwrap().is_empty());
    assert!(tune(&k, &o, 0, &doc(1).kdamonds[0]).is_err());
    assert!(k.written().is_empty(), "stop and tune must not touch it either");
}

#[test]
fn a_stopped_foreign_kdamond_keeps_its_parameters() {
    let k = FakeKernel::new();
    k.files.borrow_mut().insert("kdamonds/nr_kdamonds".into(), "1".into());
    k.files.borrow_mut().insert("kdamonds/0/state".into(), "off".into());
    let (_d, o) = owned();
    let e = start(&k, &o, &doc(1)).unwrap_err().to_string();
    assert!(e.contains("would erase"), "{e}");
    assert!(k.written().is_empty());
}

#[test]
fn stop_stops_ours_and_restores_nr_kdamonds() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    start(&k, &o, &doc(1234)).unwrap();
    k.writes.borrow_mut().clear();
    assert_eq!(stop(&k, &o, None).unwrap(), [0]);
    assert_eq!(k.written(), ["kdamonds/0/state=off", "kdamonds/nr_kdamonds=0"]);
    assert!(o.entries().unwrap().is_empty());
}

#[test]
fn tune_rewrites_and_commits_ours() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    start(&k, &o, &doc(1234)).unwrap();
    k.writes.borrow_mut().clear();
    let mut new = doc(1234).kdamonds.remove(0);
    new.contexts[0].intervals.aggr_us = 200_000;
    tune(&k, &o, 0, &new).unwrap();
    let written = k.written();
    assert!(written.contains(&"kdamonds/0/contexts/0/monitoring_attrs/intervals/aggr_us=200000".to_owned()));
    assert_eq!(written.last().unwrap(), "kdamonds/0/state=commit");
}

#[test]
fn status_reads_back_what_start_wrote() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    let d = doc(1234);
    start(&k, &o, &d).unwrap();
    let back = read::document(&k, &o).unwrap();
    let ctx = &back.kdamonds[0].contexts[0];
    assert_eq!(back.kdamonds[0].ours, Some(true));
    assert_eq!(ctx.intervals, d.kdamonds[0].contexts[0].intervals);
    assert_eq!(ctx.targets[0].pid, Some(1234));
    assert_eq!(ctx.schemes[0].action, "pageout");
    assert_eq!(ctx.schemes[0].access_pattern.age.min, 5_000_000);
}

#[test]
fn bad_parameters_are_refused_before_any_write() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    let mut d = doc(1);
    d.kdamonds[0].contexts[0].intervals.aggr_us = 10;
    let e = start(&k, &o, &d).unwrap_err().to_string();
    assert!(e.contains("aggregation interval"), "{e}");
    let missing = FakeKernel { features: vec![], ..FakeKernel::new() };
    let mut d = doc(1);
    d.kdamonds[0].contexts[0].schemes[0].apply_interval_us = 1000;
    let e = format!("{:#}", start(&missing, &o, &d).unwrap_err());
    assert!(e.contains("apply interval"), "{e}");
}

#[test]
fn a_hugepage_size_filter_reaches_sysfs_and_reads_back_from_a_kdamonds_json() {
    // damo's kdamonds JSON writes the range as a [min, max] pair with units.
    let json = r#"{"kdamonds": [{"contexts": [{"ops": "vaddr", "targets": [{"pid": 42}],
        "intervals": {"sample_us": "5 ms", "aggr_us": "100 ms", "ops_update_us": "1 s"},
        "schemes": [{"action": "stat", "filters": [{"filter_type": "hugepage_size", "matching": true, "allow": false,
                                                     "hugepage_size": ["2 MiB", "2 MiB"]}]}]}]}]}"#;
    let doc: Document = serde_json::from_str(json).unwrap();
    assert_eq!(doc.kdamonds[0].contexts[0].schemes[0].filters[0].hugepage_size, Some([2 << 20, 2 << 20]));
    let k = FakeKernel::new();
    let (_d, o) = owned();
    start(&k, &o, &doc).unwrap();
    let written = k.written();
    let filter = "kdamonds/0/contexts/0/schemes/0/filters/0";
    for (file, value) in [("type", "hugepage_size"), ("min", "2097152"), ("max", "2097152")] {
        let line = format!("{filter}/{file}={value}");
        assert!(written.contains(&line), "{line} not written: {written:?}");
    }
    let back = read::document(&k, &o).unwrap();
    assert_eq!(back.kdamonds[0].contexts[0].schemes[0].filters[0].hugepage_size, Some([2 << 20, 2 << 20]));
}

#[test]
fn status_json_round_trips_through_start() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    start(&k, &o, &doc(1234)).unwrap();
    let json = serde_json::to_string_pretty(&read::document(&k, &o).unwrap()).unwrap();
    stop(&k, &o, None).unwrap();
    // What `status --json` printed starts the same kdamond again.
    let again: Document = serde_json::from_str(&json).unwrap();
    let fresh = FakeKernel::new();
    let (_d2, o2) = owned();
    start(&fresh, &o2, &again).unwrap();
    let mut first = again.kdamonds[0].contexts.clone();
    let mut second = read::document(&fresh, &o2).unwrap().kdamonds[0].contexts.clone();
    for s in first.iter_mut().chain(second.iter_mut()).flat_map(|c| &mut c.schemes) {
        s.stats = None;
    }
    assert_eq!(first, second);
}

#[test]
fn a_state_entry_whose_pid_no_longer_matches_claims_nothing() {
    // Someone restarted kdamond 0 (now pid 79) after ours (pid 4000) ended: the stale
    // "0 4000" line must not let stop or tune touch it.
    let k = FakeKernel::new();
    k.foreign_running(0, 79);
    let (_d, o) = owned();
    o.replace(&[(0, 4000)]).unwrap();
    let e = stop(&k, &o, Some(&[0])).unwrap_err().to_string();
    assert!(e.contains("not started by damo-trace"), "{e}");
    assert!(stop(&k, &o, None).unwrap().is_empty());
    assert!(tune(&k, &o, 0, &doc(1).kdamonds[0]).is_err());
    assert!(k.written().is_empty(), "the kdamond was written: {:?}", k.written());
    assert_eq!(read::document(&k, &o).unwrap().kdamonds[0].ours, Some(false));
}

#[test]
fn an_untrusted_state_file_stops_nothing() {
    // A state directory others can write (mode 0777): its claim on the running kdamond is
    // refused with the reason, and nothing is written to sysfs or to the directory's mode.
    let k = FakeKernel::new();
    k.foreign_running(0, 79);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("owned"), "0 79\n").unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let o = Ownership::new(&run);
    let e = format!("{:#}", stop(&k, &o, None).unwrap_err());
    assert!(e.contains("refusing to trust") && e.contains("writable by group or others"), "{e}");
    assert!(format!("{:#}", tune(&k, &o, 0, &doc(1).kdamonds[0]).unwrap_err()).contains("refusing to trust"));
    assert!(k.written().is_empty(), "the kdamond was written: {:?}", k.written());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&run).unwrap().mode() & 0o7777, 0o777, "damo-trace must not chmod what it did not create");
}

#[test]
fn a_snapshot_adds_a_stat_scheme_and_takes_it_away_after() {
    let k = FakeKernel::new();
    let (_d, o) = owned();
    let mut d = doc(1234);
    // Short intervals: the snapshot waits a few of them after its commit.
    d.kdamonds[0].contexts[0].intervals.aggr_us = 10_000;
    start(&k, &o, &d).unwrap();
    // What the kernel would report for the added scheme (index 1, after the pageout one).
    let tried = "kdamonds/0/contexts/0/schemes/1/tried_regions/0";
    k.files.borrow_mut().insert(tried.into(), String::new());
    for (file, value) in [("start", "4096"), ("end", "12288"), ("nr_accesses", "3"), ("age", "7"), ("target_idx", "0")] {
        k.files.borrow_mut().insert(format!("{tried}/{file}"), value.into());
    }
    k.writes.borrow_mut().clear();
    let record = snapshot::take(&k, &o, 0, 5_000_000_000).unwrap();
    let regions = &record.targets[0].snapshots[0].regions;
    assert_eq!((regions.len(), regions[0].start, regions[0].end, regions[0].nr_accesses, regions[0].age), (1, 4096, 12288, 3, Some(7)));
    assert_eq!(record.targets[0].scheme_idx, Some(1));
    let written = k.written();
    let commits: Vec<usize> = written.iter().enumerate().filter(|(_, w)| *w == "kdamonds/0/state=commit").map(|(i, _)| i).collect();
    assert_eq!(commits.len(), 2, "one commit to add the scheme, one to remove it: {written:?}");
    assert!(written[..commits[0]].contains(&"kdamonds/0/contexts/0/schemes/nr_schemes=2".to_owned()), "{written:?}");
    assert!(written[commits[0]..].contains(&"kdamonds/0/contexts/0/schemes/nr_schemes=1".to_owned()), "{written:?}");
    let back = read::document(&k, &o).unwrap();
    assert_eq!(back.kdamonds[0].contexts[0].schemes.iter().map(|s| s.action.as_str()).collect::<Vec<_>>(), ["pageout"]);
}
