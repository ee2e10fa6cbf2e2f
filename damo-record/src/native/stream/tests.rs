//! The streaming reader against the in-memory one, on the same bytes.

use super::super::{
    read,
    tests::{grouped_record, proc_record, sample_record, write_all, write_grouped},
    NativeError, HEADER_LEN,
};
use super::*;
use crate::synth::{self, SynthSpec};

/// What streaming `bytes` yields with `threads` decoding key groups (1: the sequential
/// reader), assembled as [`read`] returns it.
fn streamed_with(bytes: &[u8], rest: Rest, threads: Option<usize>) -> Result<super::super::NativeRead, NativeError> {
    let mut got: Vec<(usize, Snapshot)> = Vec::new();
    let end = stream_with(bytes, &mut Meter::new(), rest, Targets::All, threads, |i, t, s| {
        assert!(t.snapshots.is_empty(), "targets come without snapshots");
        got.push((i, s.clone()));
    })?;
    let mut record = end.rest;
    for (i, s) in got {
        record.targets[i].snapshots.push(s);
    }
    Ok(super::super::NativeRead { record, damaged_at: end.damaged_at, complete: end.complete })
}

/// Streaming yields exactly what reading yields: the snapshots, the rest (kept), where the
/// damage is and whether the record is complete; with [`Rest::Drop`], the same snapshots.
/// So does it sequentially and with 2 and 3 threads decoding key groups.
fn assert_same(bytes: &[u8], what: &str) {
    for threads in [1, 2, 3] {
        let what = &format!("{what}, {threads} thread(s)");
        let want = read(bytes);
        let got = streamed_with(bytes, Rest::Keep, Some(threads));
        match (want, got) {
            (Ok(want), Ok(got)) => {
                assert_eq!(got.record, want.record, "{what}");
                assert_eq!((got.damaged_at, got.complete), (want.damaged_at, want.complete), "{what}");
                let dropped = streamed_with(bytes, Rest::Drop, Some(threads)).unwrap();
                assert_eq!(dropped.record.targets, want.record.targets, "{what}: dropping the rest");
                assert!(dropped.record.samples.is_empty() && dropped.record.footprints.is_empty(), "{what}");
                assert_eq!((dropped.damaged_at, dropped.complete), (want.damaged_at, want.complete), "{what}");
            }
            (Err(want), Err(got)) => assert_eq!(got.to_string(), want.to_string(), "{what}"),
            (want, got) => panic!("{what}: read {want:?}, streamed {got:?}"),
        }
    }
}

/// Two targets interleaved over several check groups, with stacks and /proc samples.
fn records() -> Vec<(&'static str, Vec<u8>)> {
    let multi = synth::record(SynthSpec { targets: 3, snapshots_per_target: 40, regions: 12, seed: 5 });
    vec![
        ("every chunk kind", sample_record().1),
        ("proc samples", proc_record().1),
        ("three targets", write_all(&multi)),
        ("three targets in key groups", write_grouped(&multi, 6)),
        ("key groups with other chunks", grouped_record().1),
    ]
}

#[test]
fn whole_records_stream_as_they_read() {
    for (name, bytes) in records() {
        assert_same(&bytes, name);
        assert!(read(&bytes).unwrap().complete, "{name}");
    }
}

#[test]
fn a_cut_at_any_byte_streams_as_it_reads() {
    for (name, bytes) in records() {
        for cut in 0..bytes.len() {
            assert_same(&bytes[..cut], &format!("{name} cut at {cut}"));
        }
    }
}

#[test]
fn a_flipped_byte_anywhere_streams_as_it_reads() {
    for (name, bytes) in records() {
        for at in HEADER_LEN..bytes.len() {
            for flip in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                assert_same(&bad, &format!("{name} with byte {at} ^ {flip:#x}"));
            }
        }
    }
}

#[test]
fn a_zero_filled_tail_streams_as_it_reads() {
    for (name, bytes) in &records()[2..] {
        for cut in HEADER_LEN..bytes.len() {
            let mut torn = bytes[..cut].to_vec();
            torn.resize(bytes.len() + 64, 0);
            assert_same(&torn, &format!("{name}: zero tail from {cut}"));
        }
    }
}

/// Key groups are decoded by the workers and applied as they come back; what they cannot
/// decode whole (damage, a cut, the memory limit) goes to the sequential reader, once.
#[test]
fn key_groups_decode_on_workers_and_damage_goes_to_the_sequential_reader() {
    use super::parallel::{APPLIED, REPLAYED};
    let counted = |bytes: &[u8], threads, limit| {
        APPLIED.with(|n| n.set(0));
        REPLAYED.with(|n| n.set(0));
        let mut n = 0;
        let end = stream_with(bytes, &mut Meter::with_limit(limit), Rest::Drop, Targets::All, Some(threads), |_, _, _| n += 1);
        (end.map(|e| (e.damaged_at, e.complete)).ok(), n, APPLIED.with(|n| n.get()), REPLAYED.with(|n| n.get()))
    };
    let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 200, regions: 50, seed: 8 });
    let bytes = write_grouped(&record, 20);
    // 10 groups, each decoded on a worker.
    assert_eq!(counted(&bytes, 2, u64::MAX), (Some((None, true)), 600, 10, 0));
    assert_eq!(counted(&bytes, 4, u64::MAX), (Some((None, true)), 600, 10, 0));
    // One thread: the sequential reader, from the start.
    assert_eq!(counted(&bytes, 1, u64::MAX), (Some((None, true)), 600, 0, 0));
    // Cut in the 6th group: 5 groups decoded, the rest read sequentially.
    let cut = &bytes[..bytes.len() * 11 / 20];
    let (end, n, applied, replayed) = counted(cut, 2, u64::MAX);
    assert_eq!((end.map(|e| e.1), applied, replayed), (Some(false), 5, 1));
    assert!(n > 300 && n < 360, "{n} snapshots");
    // A limit that one group does not fit in but the sequential reader's check groups do.
    let one_group = bytes_of::<Region>(20 * 3 * 51);
    let (end, n, applied, replayed) = counted(&bytes, 2, one_group);
    assert_eq!((end, n, applied, replayed), (Some((None, true)), 600, 0, 1));
}

/// Reading ahead holds a few groups and gives everything back at the end.
#[test]
fn parallel_streaming_gives_back_what_it_holds() {
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 300, regions: 200, seed: 3 });
    let bytes = write_grouped(&record, 25);
    let mut meter = Meter::with_limit(64 << 20);
    let mut got: Vec<Vec<Snapshot>> = vec![Vec::new(); 2];
    let end = stream_with(&bytes[..], &mut meter, Rest::Drop, Targets::All, Some(2), |i, _, s| got[i].push(s.clone())).unwrap();
    assert!(end.complete);
    assert_eq!(meter.used(), bytes_of::<TargetRecord>(2));
    assert!(!meter.exhausted());
    for (got, want) in got.iter().zip(&record.targets) {
        assert_eq!(got[..], want.snapshots[..]);
    }
}

#[test]
fn what_is_not_a_record_is_refused_alike() {
    for bytes in [&b""[..], b"\x89DT", b"not a record at all", &[0u8; 40]] {
        assert_same(bytes, &format!("{bytes:?}"));
    }
}

/// A record whose snapshots take 20 times the memory limit streams within it: the reader
/// holds a check group and each target's last snapshot, never the record.
#[test]
fn memory_is_bounded_by_a_group_not_the_record() {
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 640, regions: 500, seed: 9 });
    let bytes = write_all(&record);
    let held = bytes_of::<Region>(record.targets.iter().flat_map(|t| &t.snapshots).map(|s| s.regions.len() as u64 + 1).sum());
    let limit = held / 20;
    assert!(matches!(super::super::read_with(&bytes, &mut Meter::with_limit(limit)), Err(NativeError::OverBudget(_))), "the in-memory reader needs it all");
    let mut meter = Meter::with_limit(limit);
    let mut n = 0;
    let end = stream(&bytes[..], &mut meter, Rest::Drop, |_, _, _| n += 1).unwrap();
    assert!(end.complete);
    assert_eq!(n, 1280);
    assert_eq!(meter.used(), bytes_of::<TargetRecord>(2), "everything but the targets is given back");
    // A limit below one snapshot is an error, not damage.
    let tiny = stream(&bytes[..], &mut Meter::with_limit(1000), Rest::Drop, |_, _, _| {});
    assert!(matches!(tiny, Err(NativeError::OverBudget(_))), "{tiny:?}");
}

/// Chunks after the snapshots (a recording's end) are read, and dropped on request.
#[test]
fn dropped_chunks_leave_targets_metadata_and_losses() {
    let (expected, bytes) = sample_record();
    let mut meter = Meter::new();
    let end = stream(&bytes[..], &mut meter, Rest::Drop, |_, _, _| {}).unwrap();
    assert_eq!(meter.used(), bytes_of::<TargetRecord>(2), "what was dropped is given back");
    assert_eq!(end.rest.losses, expected.losses);
    assert_eq!(end.rest.targets.len(), 2);
    assert!(end.rest.samples.is_empty() && end.rest.modules.is_empty() && end.rest.code_symbols.is_empty());
}

/// Threads decode only records with key groups, and only when there are two or more.
#[test]
fn threads_decode_only_key_groups() {
    use super::parallel::workers;
    assert_eq!(workers(3, Some(4)), Some(4));
    assert_eq!(workers(3, Some(1)), None, "one thread: the sequential reader");
    assert_eq!(workers(2, Some(4)), None, "version 2 has no key groups");
}

/// A read of one target yields that target's snapshots exactly as a read of all does, on
/// one thread and on several, and the other targets' frames still end the read where their
/// check fails.
#[test]
fn one_target_reads_as_its_part_of_every_target() {
    let record = synth::record(SynthSpec { targets: 3, snapshots_per_target: 200, regions: 50, seed: 12 });
    let only = |bytes: &[u8], index: usize, threads: usize| {
        let mut got = Vec::new();
        let end = stream_with(bytes, &mut Meter::new(), Rest::Drop, Targets::Only(index), Some(threads), |i, _, s| {
            assert_eq!(i, index, "only the target asked for is visited");
            got.push(s.clone());
        });
        (end.map(|e| (e.damaged_at, e.complete)).ok(), got)
    };
    for bytes in [write_all(&record), write_grouped(&record, 20)] {
        for (index, target) in record.targets.iter().enumerate() {
            for threads in [1, 2] {
                assert_eq!(only(&bytes, index, threads), (Some((None, true)), target.snapshots.clone()), "target {index}, {threads} thread(s)");
            }
        }
        // A flipped byte in another target's frame: its check group is damaged for every read.
        let all = read(&bytes).unwrap();
        let mut bad = bytes.clone();
        let at = bytes.len() / 2;
        bad[at] ^= 0x80;
        let want = read(&bad).unwrap();
        assert!(want.damaged_at.is_some(), "the flip at {at} is damage");
        for threads in [1, 2] {
            let (end, got) = only(&bad, 1, threads);
            assert_eq!(end, Some((want.damaged_at, want.complete)), "{threads} thread(s)");
            assert_eq!(got, want.record.targets[1].snapshots, "{threads} thread(s)");
        }
        assert!(want.record.targets[1].snapshots.len() < all.record.targets[1].snapshots.len());
    }
}
