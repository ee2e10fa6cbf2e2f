use super::*;
use crate::{
    damo::json,
    synth::{self, Rng, SynthSpec},
};

/// The scanner's reading of `text` in blocks of `size` bytes.
pub(super) fn scan(text: &[u8], size: usize) -> Scan<Record> {
    read(text.chunks(size).map(|c| Ok(c.to_vec())), drop, &mut Meter::new())
}

/// What streaming `text` in blocks of `size` bytes hands over, put back together as [`read`]
/// gives it: the record without snapshots, each snapshot added to the target it came with,
/// which must be that target less its snapshots.
fn streamed(text: &[u8], size: usize, meter: &mut Meter) -> Scan<Record> {
    let mut handed: Vec<(usize, TargetRecord, Snapshot)> = Vec::new();
    let mut each = |index: usize, target: &TargetRecord, snapshot: Snapshot| {
        assert!(target.snapshots.is_empty());
        handed.push((index, target.clone(), snapshot));
        Vec::new()
    };
    let mut record = stream(text.chunks(size).map(|c| Ok(c.to_vec())), drop, meter, &mut each)?;
    assert!(record.targets.iter().all(|t| t.snapshots.is_empty()), "the record comes back without snapshots");
    for (index, target, _) in &handed {
        assert_eq!(*target, record.targets[*index], "snapshots come with their target");
    }
    for (index, _, snapshot) in handed {
        record.targets[index].snapshots.push(snapshot);
    }
    Ok(record)
}

/// The generic parser's reading.
pub(super) fn serde(text: &[u8]) -> Result<Record, crate::damo::DamoError> {
    json::read_by_serde(text, &mut Meter::new())
}

pub(super) fn written(record: &Record) -> Vec<u8> {
    let mut text = Vec::new();
    json::write(record, &mut text).unwrap();
    text
}

#[test]
fn damos_own_layout_reads_as_serde_reads_it_in_blocks_of_any_size() {
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 3, regions: 4, seed: 5 });
    let text = written(&record);
    let want = serde(&text).unwrap();
    for size in [1, 2, 3, 7, 64, 1000, text.len()] {
        assert_eq!(scan(&text, size).unwrap(), want, "blocks of {size}");
    }
}

/// Forms damo writes besides its default layout: numbers as JSON numbers, units, nulls,
/// percentages, ages in µs, DAMOS stats, filters, members in another order, a fake snapshot.
const VARIANTS: &str = r#"[
  {"target_id": 7, "kdamond_idx": 1, "context_idx": 0,
   "intervals": {"sample_us": "5 ms", "aggr_us": 100000, "ops_update_us": "1 s"},
   "scheme_filters": [{"filter_type": "anon", "matching": true, "allow": false}],
   "snapshots": [
     {"end_time": 2000000000, "start_time": "1,000,000,000", "regions": [
        {"start": 4096, "end": "8,192", "nr_accesses": {"samples": null, "percent": 50}, "age": {"usec": 300000, "aggr_intervals": null}, "sz_filter_passed": "4 KiB", "probe_hits": []},
        {"end": "12 KiB", "start": "8 KiB", "nr_accesses": {"percent": "25%"}, "age": null},
        {"start": 12288, "end": 16384, "nr_accesses": {}, "age": {}, "probe_hits": null}
     ], "total_bytes": "12 KiB", "damos_stats": {"nr_tried": 1, "sz_tried": "4 KiB", "nr_applied": 0, "sz_applied": 0, "sz_ops_filter_passed": 0, "qt_exceeds": 0}},
     {"start_time": 3000000000, "end_time": 3000000000, "regions": [{"start": 0, "end": 0, "nr_accesses": {"samples": -1}, "age": {"aggr_intervals": -1}}]}
   ],
   "data_source": "unknown"},
  {"snapshots": [], "target_id": null, "scheme_idx": 2}
]"#;

#[test]
fn the_other_forms_damo_writes_read_as_serde_reads_them() {
    let want = serde(VARIANTS.as_bytes()).unwrap();
    assert!(want.damos.is_some(), "the variants carry DAMOS details");
    for size in [1, 5, 4096] {
        assert_eq!(scan(VARIANTS.as_bytes(), size).unwrap(), want, "blocks of {size}");
    }
}

/// Streamed, a record hands over the snapshots it reads, with their targets, and a meter is
/// charged for one snapshot at a time: a record past a limit streams within it.
#[test]
fn a_streamed_record_hands_over_what_a_read_keeps() {
    let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 40, regions: 30, seed: 3 });
    for text in [written(&record), VARIANTS.as_bytes().to_vec()] {
        let want = serde(&text).unwrap();
        for size in [1, 7, 4096] {
            assert_eq!(streamed(&text, size, &mut Meter::new()).unwrap(), want, "blocks of {size}");
        }
    }
    // Members after an empty list (or one of damo's fake snapshot alone) change nothing
    // handed over.
    let text = br#"[{"snapshots": [], "target_id": 3, "intervals": {"sample_us": 1, "aggr_us": 2, "ops_update_us": 3}}]"#;
    assert_eq!(streamed(text, 5, &mut Meter::new()).unwrap(), serde(text).unwrap());
    let text = written(&record);
    let mut whole = Meter::new();
    read(std::iter::once(Ok(text.clone())), drop, &mut whole).unwrap();
    let limit = whole.used() / 10;
    assert_eq!(read(std::iter::once(Ok(text.clone())), drop, &mut Meter::with_limit(limit)), Err(Stop::OverBudget));
    let mut one_at_a_time = Meter::with_limit(limit);
    assert_eq!(streamed(&text, 4096, &mut one_at_a_time).unwrap(), serde(&text).unwrap());
    assert!(one_at_a_time.used() < limit / 2, "{} of {limit} left charged", one_at_a_time.used());
}

#[test]
fn what_damo_does_not_write_is_left_to_serde() {
    for text in [
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 1.5, "end": 2}]}]}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": "a\"b", "end": 2}]}]}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 0, "end": 2, "color": 3}]}]}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 0, "end": 2, "end": 3}]}]}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 01, "end": 2}]}]}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 12345678901234567890, "end": 2}]}]}]"#,
        r#"[{"snapshots": [], "snapshots": []}]"#,
        // Snapshots handed over with a target that members after them change.
        r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 0, "end": 2}]}], "target_id": 3}]"#,
        r#"[{"snapshots": [{"end_time": 1, "regions": []}], "intervals": {"sample_us": 1, "aggr_us": 2, "ops_update_us": 3}}]"#,
        r#"[{"snapshots": []}] x"#,
        r#"[{"snapshots": []}"#,
    ] {
        assert_eq!(scan(text.as_bytes(), 3), Err(Stop::Unexpected), "{text}");
    }
}

#[test]
fn prefixes_compare_as_starts_with_does() {
    let keys: [&[u8]; 5] = [b"ab", b"\"end\":", b"\"start\":", b"\"nr_accesses\":", b"\"sz_filter_passed\":"];
    for key in keys {
        for hay in keys.iter().flat_map(|k| [k.to_vec(), [*k, b" tail"].concat(), k[..k.len() - 1].to_vec()]) {
            assert_eq!(has_prefix(&hay, key), hay.starts_with(key), "{:?} in {:?}", String::from_utf8_lossy(key), String::from_utf8_lossy(&hay));
            let mut changed = [key, b"x"].concat();
            let middle = key.len() / 2;
            changed[middle] ^= 1;
            assert!(!has_prefix(&changed, key));
        }
    }
}

#[test]
fn a_failed_block_stops_the_scan() {
    let text = written(&synth::record(SynthSpec { targets: 1, snapshots_per_target: 2, regions: 2, seed: 1 }));
    let blocks = vec![Ok(text[..100].to_vec()), Err(io::Error::other("damaged"))];
    assert_eq!(read(blocks.into_iter(), drop, &mut Meter::new()), Err(Stop::Unexpected));
}

#[test]
fn regions_are_charged_as_serde_charges_them() {
    let text = written(&synth::record(SynthSpec { targets: 2, snapshots_per_target: 5, regions: 20, seed: 2 }));
    let mut generic = Meter::new();
    json::read_by_serde(&text, &mut generic).unwrap();
    let mut scanned = Meter::new();
    read(std::iter::once(Ok(text.clone())), drop, &mut scanned).unwrap();
    assert_eq!(scanned.used(), generic.used());
    let limit = generic.used() / 2;
    assert_eq!(read(std::iter::once(Ok(text)), drop, &mut Meter::with_limit(limit)), Err(Stop::OverBudget));
}

/// Mutated documents: whatever the scanner reads, serde reads the same; it never reads one
/// that serde refuses.
#[test]
fn mutations_read_as_serde_reads_them_or_are_left_to_it() {
    let bases = [VARIANTS.as_bytes().to_vec(), written(&synth::record(SynthSpec { targets: 2, snapshots_per_target: 2, regions: 3, seed: 9 }))];
    let bytes = b"0123456789-,:{}[]\" .eEnul\\ab";
    let mut rng = Rng(11);
    let (mut read_here, mut left) = (0, 0);
    for round in 0..4000 {
        let mut text = bases[round % 2].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(text.len() as u64) as usize;
            match rng.below(3) {
                0 => text[at] = rng.pick(bytes),
                1 => {
                    text.remove(at);
                }
                _ => text.insert(at, rng.pick(bytes)),
            }
        }
        let size = 1 + rng.below(40) as usize;
        let scanned = scan(&text, size);
        assert_eq!(streamed(&text, size, &mut Meter::new()), scanned, "streamed as read: {}", String::from_utf8_lossy(&text));
        match scanned {
            Ok(record) => {
                read_here += 1;
                let generic = serde(&text).unwrap_or_else(|e| panic!("serde refuses what the scanner read ({e}): {}", String::from_utf8_lossy(&text)));
                assert_eq!(record, generic, "{}", String::from_utf8_lossy(&text));
            }
            Err(_) => left += 1,
        }
    }
    assert!(read_here > 100 && left > 100, "{read_here} read, {left} left to serde");
}
