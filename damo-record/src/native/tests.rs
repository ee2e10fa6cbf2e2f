use super::*;
use crate::model::*;

fn target(id: u64) -> TargetRecord {
    TargetRecord { kdamond_idx: 0, context_idx: 0, scheme_idx: None, target_id: id, intervals: Some(Intervals { sample_us: 5000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots: Vec::new() }
}

fn snapshot(t: u64, n: u64) -> Snapshot {
    let regions = (0..n).map(|i| Region { start: 0x7f00_0000_0000 + i * 8192, end: 0x7f00_0000_0000 + i * 8192 + 4096, nr_accesses: (i % 20) as u32, age: Some((t % 7) as u32) }).collect();
    Snapshot { start_ns: t * 100_000_000, end_ns: (t + 1) * 100_000_000, regions, total_bytes: Some(n * 4096) }
}

fn sample(ts: u64) -> StackSample {
    StackSample {
        ts_ns: ts,
        pid: 42,
        tid: 43,
        cpu: 1,
        comm: "worker".into(),
        user: vec![FileAddr { module: 0, offset: 0x1234 }, FileAddr { module: UNKNOWN_MODULE, offset: 0x7fff_0000 }],
        kernel: vec![0xffff_ffff_8100_1000],
    }
}

/// A record with every chunk kind, and its bytes.
pub(super) fn sample_record() -> (Record, Vec<u8>) {
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    let mut expected = Record::default();
    let (mut a, mut b) = (target(1), target(2));
    let modules = vec![Module { path: "/usr/bin/app".into(), build_id: Some(vec![0xab; 20]) }];
    w.modules(&modules).unwrap();
    for t in 0..5 {
        for (tr, n) in [(&mut a, 40), (&mut b, 3)] {
            let s = snapshot(t, n);
            w.snapshot(tr, &s).unwrap();
            tr.snapshots.push(s);
        }
    }
    let samples = vec![sample(5), sample(900_000_000)];
    w.stacks(&samples).unwrap();
    let symbols = vec![(0xffff_ffff_8100_1000, "do_syscall_64".to_string())];
    w.kernel_symbols(&symbols).unwrap();
    let code_symbols = code_symbols();
    w.code_symbols(&code_symbols).unwrap();
    let jit_symbols = vec![JitSymbol { pid: 42, start: 0x7fff_0000, size: 0x40, name: "LazyCompile:*hot /app/loop.js:3".into() }];
    w.jit_symbols(&jit_symbols).unwrap();
    let losses = Losses { kernel: [1, 2, 3, 4], incomplete_snapshots: 5, unnormalized_samples: 6, undecodable_events: 7, mapping_records: 8 };
    w.losses(&losses).unwrap();
    let bytes = w.finish().unwrap();
    expected.code_symbols = code_symbols;
    expected.jit_symbols = jit_symbols;
    expected.targets = vec![a, b];
    expected.modules = modules;
    expected.samples = samples;
    expected.kernel_symbols = symbols;
    expected.losses = Some(losses);
    (expected, bytes)
}

/// An inlined frame with its lines, a frame without debug info, an offset without a symbol.
fn code_symbols() -> Vec<CodeSymbol> {
    let frame = |name: &str, file: &str, line| SourceFrame { name: name.into(), file: file.into(), line };
    vec![
        CodeSymbol { module: 0, offset: 0x1233, frames: vec![frame("main", "/src/app.c", 40), frame("outer", "/src/app.c", 31), frame("leaf", "/src/leaf.h", 7)] },
        CodeSymbol { module: 0, offset: 0x1234, frames: vec![frame("memset", "", 0)] },
        CodeSymbol { module: 0, offset: 0x9999, frames: vec![] },
    ]
}

#[test]
fn code_symbols_of_a_corrupt_chunk_are_refused_whole() {
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    w.code_symbols(&code_symbols()).unwrap();
    let bytes = w.finish().unwrap();
    assert_eq!(read(&bytes).unwrap().record.code_symbols, code_symbols());
    // A payload that claims a billion frames, with a valid CRC: refused without allocating.
    let mut payload = Vec::new();
    for v in [1u64, 0, 0x10, 1 << 30] {
        codec::put_varint(&mut payload, v);
    }
    let mut chunk = Vec::new();
    chunk.extend((ChunkKind::CodeSymbols as u16).to_le_bytes());
    chunk.extend(0u16.to_le_bytes());
    chunk.extend((payload.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&chunk[..4]);
    crc.update(&payload);
    chunk.extend(crc.finalize().to_le_bytes());
    chunk.extend(&payload);
    let mut data = bytes[..HEADER_LEN].to_vec();
    data.extend(chunk);
    let read = read(&data).unwrap();
    assert_eq!(read.damaged_at, Some(HEADER_LEN as u64));
    assert!(read.record.code_symbols.is_empty());
}

#[test]
fn round_trips_every_chunk_kind() {
    let (expected, bytes) = sample_record();
    let read = read(&bytes).unwrap();
    assert!(read.complete);
    assert_eq!(read.damaged_at, None);
    assert_eq!(read.record, expected);
}

#[test]
fn a_cut_at_any_byte_keeps_every_chunk_before_it() {
    let (expected, bytes) = sample_record();
    let mut last_snapshots = 0;
    for cut in HEADER_LEN..bytes.len() {
        let read = read(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert!(!read.complete, "cut at {cut} claims to be complete");
        let snapshots: usize = read.record.targets.iter().map(|t| t.snapshots.len()).sum();
        assert!(snapshots >= last_snapshots, "cut at {cut} lost snapshots a shorter cut had");
        last_snapshots = snapshots;
        for (got, want) in read.record.targets.iter().zip(&expected.targets) {
            assert_eq!(got.snapshots[..], want.snapshots[..got.snapshots.len()], "cut at {cut}");
        }
    }
    assert_eq!(last_snapshots, 10);
}

#[test]
fn corruption_is_found_and_reported_where_it_is() {
    let (_, mut bytes) = sample_record();
    let target_chunk_end = HEADER_LEN + CHUNK_HEADER_LEN + {
        let len = u32::from_le_bytes(bytes[HEADER_LEN + 4..HEADER_LEN + 8].try_into().unwrap());
        len as usize
    };
    // Flip a byte in the second chunk's payload.
    bytes[target_chunk_end + CHUNK_HEADER_LEN + 1] ^= 0x55;
    let read = read(&bytes).unwrap();
    assert_eq!(read.damaged_at, Some(target_chunk_end as u64));
    assert!(!read.complete);
    assert_eq!(read.record.modules.len(), 1, "the chunk before the damage is kept");
}

#[test]
fn rejects_what_is_not_a_record() {
    assert!(matches!(read(b""), Err(NativeError::BadMagic)));
    assert!(matches!(read(b"{\"records\": []}"), Err(NativeError::BadMagic)));
    assert!(matches!(read(&MAGIC[..5]), Err(NativeError::Short)));
    let mut future = MAGIC.to_vec();
    future.extend(99u32.to_le_bytes());
    future.extend([0; 4]);
    let err = read(&future).unwrap_err();
    assert!(matches!(err, NativeError::UnknownVersion(99)));
    assert!(err.to_string().contains("version 99 is not supported"));
}

#[test]
fn unknown_chunk_kinds_are_skipped() {
    let (expected, bytes) = sample_record();
    // Splice a chunk of kind 999 right after the header.
    let read = read(&splice(&bytes, 999, b"from the future")).unwrap();
    assert!(read.complete);
    assert_eq!(read.record, expected);
}

/// `bytes` with a chunk of `kind` holding `payload` right after the header.
fn splice(bytes: &[u8], kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::new();
    chunk.extend(kind.to_le_bytes());
    chunk.extend(0u16.to_le_bytes());
    chunk.extend((payload.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&chunk[..4]);
    crc.update(payload);
    chunk.extend(crc.finalize().to_le_bytes());
    chunk.extend(payload);
    let mut spliced = bytes[..HEADER_LEN].to_vec();
    spliced.extend(chunk);
    spliced.extend(&bytes[HEADER_LEN..]);
    spliced
}

#[test]
fn losses_of_older_and_newer_writers_read() {
    let empty = NativeWriter::new(Vec::new()).unwrap().finish().unwrap();
    // Seven counters, as records written before lost mapping records were counted.
    let older = read(&splice(&empty, ChunkKind::Losses as u16, &[7, 1, 2, 3, 4, 5, 6, 7])).unwrap();
    assert_eq!(older.record.losses, Some(Losses { kernel: [1, 2, 3, 4], incomplete_snapshots: 5, unnormalized_samples: 6, undecodable_events: 7, mapping_records: 0 }));
    // Nine: a newer writer's extra counter is skipped.
    let newer = read(&splice(&empty, ChunkKind::Losses as u16, &[9, 1, 2, 3, 4, 5, 6, 7, 8, 9])).unwrap();
    assert_eq!(newer.record.losses.map(|l| l.mapping_records), Some(8));
}

pub(super) fn write_all(record: &Record) -> Vec<u8> {
    write_with(NativeWriter::new(Vec::new()).unwrap(), record)
}

/// `record`'s snapshots through `w`, interleaved as a recording writes them.
fn write_with(mut w: NativeWriter<Vec<u8>>, record: &Record) -> Vec<u8> {
    let most = record.targets.iter().map(|t| t.snapshots.len()).max().unwrap_or(0);
    // Interleaved, as a recording writes them.
    for i in 0..most {
        for t in &record.targets {
            if let Some(s) = t.snapshots.get(i) {
                w.snapshot(t, s).unwrap();
            }
        }
    }
    w.finish().unwrap()
}

fn damo_fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/damo-report-data/damon.data")
}

/// The bar: a record's snapshots take at most a tenth of damo's json_compressed.
#[test]
fn the_damo_fixture_takes_a_tenth_of_its_json_compressed_size() {
    let path = damo_fixture();
    let json_compressed = std::fs::metadata(&path).unwrap().len();
    let loaded = crate::load::load(&path).unwrap();
    let bytes = write_all(&loaded.record);
    assert!(bytes.len() as u64 * 10 <= json_compressed, "{} bytes for damo's {json_compressed} bytes of json_compressed ({:.1}×)", bytes.len(), json_compressed as f64 / bytes.len() as f64);
    let read = read(&bytes).unwrap();
    assert!(read.complete);
    assert_eq!(read.record.targets, loaded.record.targets);
}

#[test]
fn synthetic_records_round_trip() {
    for (targets, snapshots, regions, seed) in [(3, 200, 150, 1), (1, 50, 1, 2), (5, 20, 1000, 3)] {
        let record = crate::synth::record(crate::synth::SynthSpec { targets, snapshots_per_target: snapshots, regions, seed });
        let read = read(&write_all(&record)).unwrap();
        assert!(read.complete);
        assert_eq!(read.record, record);
    }
}

use crate::synth::Rng;

/// Whatever a reader of another format hands over is stored exactly: unsorted, overlapping,
/// empty and unaligned regions, extreme numbers, ages that come and go, times that jump back.
#[test]
fn arbitrary_snapshots_round_trip() {
    let record = arbitrary_record(&mut Rng(0x1234_5678));
    let read = read(&write_all(&record)).unwrap();
    assert!(read.complete);
    assert_eq!(read.record, record);
}

/// Three targets of 300 snapshots that are anything a reader of another format may hand over.
fn arbitrary_record(rng: &mut Rng) -> Record {
    let mut record = Record::default();
    for id in 0..3 {
        let mut t = target(id);
        let mut regions: Vec<Region> = Vec::new();
        for i in 0..300u64 {
            match rng.next_u64() % 4 {
                // Keep most regions and touch a few, like DAMON.
                0 | 1 if !regions.is_empty() => {
                    let k = (rng.next_u64() % regions.len() as u64) as usize;
                    regions[k].nr_accesses = rng.pick(&[0, 1, 20, u32::MAX]);
                    regions[k].age = rng.pick(&[None, Some(0), Some(1), Some(u32::MAX)]);
                    if rng.next_u64() % 3 == 2 {
                        let r = regions[k];
                        let mid = r.start.wrapping_add(rng.pick(&[4096, 1, 8192 * 3, 0]));
                        regions[k].end = mid;
                        regions.insert(k + 1, Region { start: mid, ..r });
                    }
                    if rng.next_u64() % 3 == 2 && k + 1 < regions.len() {
                        regions[k].end = regions[k + 1].end;
                        regions.remove(k + 1);
                    }
                }
                _ => {
                    let n = rng.next_u64() % 12;
                    regions = (0..n)
                        .map(|_| {
                            let x = rng.next_u64();
                            let start = rng.pick(&[0, 4096, 0x7f00_0000_0000, u64::MAX - 4096, u64::MAX, x]);
                            let x = rng.next_u64();
                            let end = start.wrapping_add(rng.pick(&[0, 4096, 1, 1 << 40, x]));
                            Region { start, end, nr_accesses: rng.pick(&[0, 5, u32::MAX]), age: rng.pick(&[None, Some(0), Some(7), Some(u32::MAX)]) }
                        })
                        .collect();
                }
            }
            let x = rng.next_u64();
            let start_ns = rng.pick(&[i * 100, u64::MAX - i, 0, x]);
            let x = rng.next_u64();
            let end_ns = rng.pick(&[start_ns.wrapping_add(100), 0, u64::MAX, x]);
            let x = rng.next_u64();
            let total_bytes = rng.pick(&[None, Some(0), Some(u64::MAX), Some(x)]);
            t.snapshots.push(Snapshot { start_ns, end_ns, regions: regions.clone(), total_bytes });
        }
        record.targets.push(t);
    }
    record
}

/// A summarizing writer's targets and sums read back, without a pass, as a pass over the
/// snapshots adds them up, written target by target (the cache) or interleaved (a
/// recording); the record reads as it was (the Summary chunk skipped). A record without
/// them, cut anywhere or damaged in them, has none.
#[test]
fn summaries_read_back_as_a_pass_adds_them_up() {
    use crate::summary::TargetSummary;
    let file_of = |bytes: &[u8]| {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    };
    let mut record = arbitrary_record(&mut Rng(0x5eed));
    // A target without snapshots is not declared; one of another's identity is that one.
    record.targets.insert(1, target(40));
    let mut twin = record.targets[0].clone();
    twin.snapshots.truncate(7);
    record.targets.push(twin);
    let mut w = NativeWriter::new(Vec::new()).unwrap().summarizing();
    for t in &record.targets {
        for s in &t.snapshots {
            w.snapshot(t, s).unwrap();
        }
    }
    let bytes = w.finish().unwrap();

    let mut by_pass: Vec<Option<TargetSummary>> = Vec::new();
    let end = stream(&bytes[..], &mut crate::budget::Meter::new(), Rest::Drop, |i, _, s| {
        by_pass.resize(by_pass.len().max(i + 1), None);
        match &mut by_pass[i] {
            Some(summary) => summary.add(s),
            none => *none = Some(TargetSummary::new(s)),
        }
    })
    .unwrap();
    assert!(end.complete && end.damaged_at.is_none());
    let summed = summaries(&file_of(&bytes)).unwrap().expect("a summarizing writer's record");
    assert_eq!(summaries_of(&bytes).as_ref(), Some(&summed), "in memory as in a file");
    assert_eq!(summed.summaries.len(), 3);
    assert_eq!(summed.summaries.iter().cloned().map(Some).collect::<Vec<_>>(), by_pass);
    assert_eq!(summed.targets, end.rest.targets);

    let whole = read(&bytes).unwrap();
    assert!(whole.complete && whole.damaged_at.is_none());
    record.targets.remove(1);
    let twin = record.targets.pop().unwrap();
    record.targets[0].snapshots.extend(twin.snapshots);
    assert_eq!(whole.record, record);

    assert_eq!(summaries(&file_of(&write_all(&record))).unwrap(), None, "a record without summaries");
    // Interleaved as a recording writes them, other chunks between.
    let mut interleaved = NativeWriter::new(Vec::new()).unwrap().summarizing();
    for i in 0..300 {
        for t in &record.targets {
            interleaved.snapshot(t, &t.snapshots[i]).unwrap();
        }
        if i % 50 == 0 {
            interleaved.stacks(&[sample(i as u64)]).unwrap();
        }
    }
    let interleaved = interleaved.finish().unwrap();
    let summed = summaries(&file_of(&interleaved)).unwrap().expect("a recording's summaries");
    let mut by_pass = Vec::new();
    stream(&interleaved[..], &mut crate::budget::Meter::new(), Rest::Drop, |i, _, s| {
        by_pass.resize(by_pass.len().max(i + 1), None);
        match &mut by_pass[i] {
            Some(summary) => TargetSummary::add(summary, s),
            none => *none = Some(TargetSummary::new(s)),
        }
    })
    .unwrap();
    assert_eq!(summed.summaries.into_iter().map(Some).collect::<Vec<_>>(), by_pass);
    assert_eq!(summed.targets, record.targets.iter().map(|t| TargetRecord { snapshots: Vec::new(), ..t.clone() }).collect::<Vec<_>>());
    for cut in (0..bytes.len()).step_by(97).chain(bytes.len() - 64..bytes.len()) {
        assert!(matches!(summaries(&file_of(&bytes[..cut])), Ok(None)), "cut at {cut}");
        assert_eq!(summaries_of(&bytes[..cut]), None, "cut at {cut}");
    }
    let summary_at = chunks(&bytes).iter().find(|c| c.1 == ChunkKind::Summary as u16).unwrap().0;
    for at in [summary_at + 5, summary_at + CHUNK_HEADER_LEN + 1, bytes.len() - 3, bytes.len() - 9] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert_eq!(summaries(&file_of(&damaged)).unwrap(), None, "damaged at {at} of {}", bytes.len());
        assert_eq!(summaries_of(&damaged), None, "damaged at {at} of {}", bytes.len());
    }
    // Payloads that pass their check and say anything: none panics or allocates past them.
    let mut rng = Rng(0xfeed);
    for _ in 0..3000 {
        let len = rng.below(80) as usize;
        let mut body: Vec<u8> = (0..len)
            .map(|_| {
                let any = rng.next_u64() as u8;
                rng.pick(&[0, 1, 2, 0x7f, 0x80, 0xff, any])
            })
            .collect();
        if rng.below(2) == 0 && !body.is_empty() {
            body[0] = rng.below(4) as u8;
        }
        let mut forged = bytes[..HEADER_LEN].to_vec();
        let at = forged.len() as u64;
        for (kind, payload) in [(ChunkKind::Summary, body), (ChunkKind::End, at.to_le_bytes().to_vec())] {
            let mut head = Vec::new();
            head.extend_from_slice(&(kind as u16).to_le_bytes());
            head.extend_from_slice(&0u16.to_le_bytes());
            head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            let mut crc = crc32fast::Hasher::new();
            crc.update(&head[..4]);
            crc.update(&payload);
            head.extend_from_slice(&crc.finalize().to_le_bytes());
            forged.extend_from_slice(&head);
            forged.extend_from_slice(&payload);
        }
        if let Some(s) = summaries_of(&forged) {
            assert_eq!(s.targets.len(), s.summaries.len());
        }
    }
}

/// Unchanged regions are copied a run at a time when the reference regions' ends increase;
/// where they do not, a region's reference skips every region ending by its end, and runs
/// of unchanged regions must follow it as one region at a time does.
#[test]
fn unchanged_runs_follow_the_reference_as_single_regions_do() {
    let r = |start: u64, end: u64| Region { start, end, nr_accesses: 3, age: Some(2) };
    let aged = |regions: &[Region]| regions.iter().map(|&x| Region { age: x.age.map(|a| a + 1), ..x }).collect::<Vec<_>>();
    // The second region ends before the first: the run of the next snapshot skips it.
    let (a, b, c) = (r(0, 100), r(50, 80), r(200, 300));
    // After the run, the reference moves past a region ending before the run's end.
    let (x, y) = (r(150, 250), r(300, 400));
    let mut pairs = vec![(vec![a, b, c], aged(&[a, c])), (vec![a, c, x], [aged(&[a, c]), vec![y]].concat()), (vec![a, b, c], aged(&[a, b, c]))];
    // Random regions, sorted or not, and a random part of them kept unchanged.
    let mut rng = Rng(0x5eed_0f72_7500);
    for case in 0..300 {
        let n = 1 + rng.below(80) as usize;
        let mut prev: Vec<Region> = (0..n)
            .map(|_| {
                let start = rng.below(1 << 20) * 4096;
                r(start, start + (1 + rng.below(64)) * 4096)
            })
            .collect();
        if case % 2 == 0 {
            prev.sort_by_key(|x| x.start);
        }
        let mut next = Vec::new();
        for &x in &prev {
            match rng.below(8) {
                0 | 1 => {}
                2 => next.push(Region { nr_accesses: 9, ..x }),
                _ => next.push(Region { age: x.age.map(|a| a + 1), ..x }),
            }
        }
        pairs.push((prev, next));
    }
    let mut record = Record::default();
    let mut t = target(1);
    for (i, (prev, next)) in pairs.into_iter().enumerate() {
        for (k, regions) in [prev, next].into_iter().enumerate() {
            let at = (2 * i + k) as u64 * 100;
            t.snapshots.push(Snapshot { start_ns: at, end_ns: at + 100, regions, total_bytes: None });
        }
    }
    record.targets.push(t);
    let read = read(&write_all(&record)).unwrap();
    assert!(read.complete);
    assert_eq!(read.record, record);
}

/// Frames carry a CRC-32 every few frames: a damaged frame takes back the frames its check
/// covers, and the checked ones before stay.
#[test]
fn a_damaged_snapshot_frame_loses_only_its_group() {
    let record = crate::synth::record(crate::synth::SynthSpec { targets: 1, snapshots_per_target: 100, regions: 50, seed: 4 });
    let mut bytes = write_all(&record);
    let at = bytes.len() * 3 / 4;
    bytes[at] ^= 0x10;
    let read = read(&bytes).unwrap();
    assert!(!read.complete);
    let damaged_at = read.damaged_at.expect("the damage is found") as usize;
    assert!(damaged_at <= at);
    let kept = &read.record.targets[0].snapshots;
    assert!(kept.len() >= 60 && kept.len() < 100, "kept {}", kept.len());
    assert_eq!(kept[..], record.targets[0].snapshots[..kept.len()]);
}

/// Cut everywhere in a record whose frames span several checks and two targets.
#[test]
fn a_cut_at_any_byte_of_many_snapshots_keeps_the_ones_before() {
    let record = crate::synth::record(crate::synth::SynthSpec { targets: 2, snapshots_per_target: 40, regions: 12, seed: 5 });
    let bytes = write_all(&record);
    let mut last = 0;
    for cut in HEADER_LEN..bytes.len() {
        let read = read(&bytes[..cut]).unwrap();
        let n: usize = read.record.targets.iter().map(|t| t.snapshots.len()).sum();
        assert!(n >= last, "cut at {cut} lost snapshots a shorter cut had");
        last = n;
        for (got, want) in read.record.targets.iter().zip(&record.targets) {
            assert_eq!(got.snapshots[..], want.snapshots[..got.snapshots.len()], "cut at {cut}");
        }
    }
    assert_eq!(last, 80, "a cut in the End chunk keeps every snapshot");
}

/// A crash can leave the file's tail zero-filled: that reads like a cut.
#[test]
fn a_zero_filled_tail_keeps_the_frames_before_it() {
    let record = crate::synth::record(crate::synth::SynthSpec { targets: 1, snapshots_per_target: 20, regions: 30, seed: 6 });
    let bytes = write_all(&record);
    let whole = read(&bytes).unwrap();
    for cut in HEADER_LEN..bytes.len() {
        let mut torn = bytes[..cut].to_vec();
        torn.resize(bytes.len() + 64, 0);
        let read = read(&torn).unwrap();
        assert!(!read.complete);
        let cut_only = super::read(&bytes[..cut]).unwrap();
        let got = read.record.targets.first().map_or(&[][..], |t| &t.snapshots[..]);
        let floor = cut_only.record.targets.first().map_or(0, |t| t.snapshots.len());
        // Zeros can complete a frame whose end was zeros anyway: more than the cut, never wrong.
        assert!(got.len() >= floor, "zero tail from {cut} lost snapshots");
        assert!(got[..] == record.targets[0].snapshots[..got.len()], "zero tail from {cut} made up a snapshot");
    }
    assert_eq!(whole.record.targets, record.targets);
}

/// A record of what recording samples from /proc, interleaved with snapshots as a recording
/// writes them, and its bytes. The vmas are big enough to be compressed.
pub(super) fn proc_record() -> (Record, Vec<u8>) {
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    let mut expected = Record::default();
    let mut t = target(7);
    let libc = |start: u64, perms: &str, offset: u64| Vma { start, end: start + 0x1000, perms: perms.into(), offset, name: "/usr/lib/x86_64-linux-gnu/libc.so.6".into() };
    for i in 0..4u64 {
        let ts_ns = (i + 1) * 1_000_000_000;
        let s = snapshot(i, 5);
        w.snapshot(&t, &s).unwrap();
        t.snapshots.push(s);
        let footprint = FootprintSnapshot {
            ts_ns,
            system: (i != 2).then_some(SystemMemory { total: 8 << 30, free: (4 << 30) - i * 4096, available: 6 << 30, buffers: 1 << 20, cached: 1 << 30 }),
            processes: vec![
                ProcessFootprint { pid: 42, vsz: 100 << 20, rss: (10 + i) << 20, shared: 1 << 20, text: 4096, data: 8 << 20 },
                ProcessFootprint { pid: 43, vsz: 50 << 20, rss: 5 << 20, shared: 0, text: 4096, data: 1 << 20 },
            ],
        };
        w.footprints(std::slice::from_ref(&footprint)).unwrap();
        expected.footprints.push(footprint);
        let vmas = VmaSnapshot {
            ts_ns,
            pid: 42,
            vmas: vec![
                Vma { start: 0x5555_0000_0000, end: 0x5555_0000_1000 + i * 4096, perms: "r-xp".into(), offset: 0x1000, name: "/usr/bin/app".into() },
                Vma { start: 0x5555_0100_0000, end: 0x5555_0200_0000, perms: "rw-p".into(), offset: 0, name: "[heap]".into() },
                Vma { start: 0x7f00_0000_0000, end: 0x7f00_1000_0000, perms: "rw-p".into(), offset: 0, name: String::new() },
                libc(0x7f10_0000_0000, "r--p", 0),
                libc(0x7f10_0000_1000, "r-xp", 0x1000),
                libc(0x7f10_0000_2000, "r--p", 0x2000),
                libc(0x7f10_0000_3000, "rw-p", 0x3000),
                // Out of order, as no kernel writes them, still round trips.
                Vma { start: 0x1000, end: 0x2000, perms: "---p".into(), offset: 0, name: "[vvar]".into() },
                Vma { start: 0xffff_ffff_ff60_0000, end: 0xffff_ffff_ff60_1000, perms: "--xp".into(), offset: 0, name: "[vsyscall]".into() },
            ],
        };
        w.vmas(std::slice::from_ref(&vmas)).unwrap();
        expected.vmas.push(vmas);
        let stats = vec![
            ProcStatSample { ts_ns, pid: 42, comm: "app".into(), utime_ns: i * 10_000_000, stime_ns: i * 1_000_000, nr_threads: 3, rss: (10 + i) << 20 },
            ProcStatSample { ts_ns, pid: 1234, comm: "kdamond.0".into(), utime_ns: 0, stime_ns: i * 20_000_000, nr_threads: 1, rss: 0 },
        ];
        w.proc_stats(&stats).unwrap();
        expected.proc_stats.extend(stats);
    }
    let bytes = w.finish().unwrap();
    expected.targets = vec![t];
    (expected, bytes)
}

#[test]
fn footprints_vmas_and_proc_stats_round_trip() {
    let (expected, bytes) = proc_record();
    let read = read(&bytes).unwrap();
    assert!(read.complete);
    assert_eq!(read.damaged_at, None);
    assert_eq!(read.record, expected);
    // The empty case too: a chunk of none, and a snapshot of no process.
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    w.footprints(&[FootprintSnapshot { ts_ns: 5, system: None, processes: Vec::new() }]).unwrap();
    w.vmas(&[]).unwrap();
    w.proc_stats(&[]).unwrap();
    let empty = super::read(&w.finish().unwrap()).unwrap();
    assert_eq!(empty.record.footprints, [FootprintSnapshot { ts_ns: 5, system: None, processes: Vec::new() }]);
    assert!(empty.record.vmas.is_empty() && empty.record.proc_stats.is_empty());
}

#[test]
fn a_cut_at_any_byte_keeps_the_proc_samples_before_it() {
    let (expected, bytes) = proc_record();
    let mut last = (0, 0, 0, 0);
    for cut in HEADER_LEN..bytes.len() {
        let read = read(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert!(!read.complete, "cut at {cut} claims to be complete");
        let r = &read.record;
        // Whole chunks only: every entry read is the one written, none is half there.
        assert_eq!(r.footprints[..], expected.footprints[..r.footprints.len()], "cut at {cut}");
        assert_eq!(r.vmas[..], expected.vmas[..r.vmas.len()], "cut at {cut}");
        assert_eq!(r.proc_stats[..], expected.proc_stats[..r.proc_stats.len()], "cut at {cut}");
        assert_eq!(r.proc_stats.len() % 2, 0, "cut at {cut}: half a proc stats chunk");
        let snapshots = r.targets.first().map_or(0, |t| t.snapshots.len());
        assert_eq!(r.targets.first().map_or(&[][..], |t| &t.snapshots[..]), &expected.targets[0].snapshots[..snapshots]);
        let now = (snapshots, r.footprints.len(), r.vmas.len(), r.proc_stats.len());
        assert!(now >= last, "cut at {cut} lost what a shorter cut had: {now:?} < {last:?}");
        last = now;
    }
    assert_eq!(last, (4, 4, 4, 8));
}

#[test]
fn a_damaged_proc_chunk_keeps_everything_before_it() {
    let (expected, mut bytes) = proc_record();
    // Find the third Vmas chunk by walking the chunks after the first framed run ends.
    let (mut pos, mut seen) = (HEADER_LEN, 0);
    let at = loop {
        let kind = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        if len == OPEN_LEN {
            // A framed snapshot run: one frame, then its end mark with a check.
            let mut p = &bytes[pos + CHUNK_HEADER_LEN..];
            let head = codec::get_varint(&mut p).unwrap();
            let after_frame = bytes.len() - p.len() + (head >> 1) as usize + if head & 1 != 0 { 4 } else { 0 };
            let mut q = &bytes[after_frame..];
            let end = codec::get_varint(&mut q).unwrap();
            pos = bytes.len() - q.len() + if end & 1 != 0 { 4 } else { 0 };
            continue;
        }
        if kind == ChunkKind::Vmas as u16 {
            seen += 1;
            if seen == 3 {
                break pos;
            }
        }
        pos += CHUNK_HEADER_LEN + len as usize;
    };
    bytes[at + CHUNK_HEADER_LEN + 3] ^= 0x40;
    let read = read(&bytes).unwrap();
    assert_eq!(read.damaged_at, Some(at as u64));
    assert!(!read.complete);
    assert_eq!(read.record.vmas[..], expected.vmas[..2]);
    assert_eq!(read.record.footprints[..], expected.footprints[..3]);
    assert_eq!(read.record.proc_stats[..], expected.proc_stats[..4]);
}

#[test]
fn metadata_round_trips_and_the_last_one_wins() {
    let first = Metadata { recorder: "damo-trace 0.1.0".into(), sample_hz: 99, ..Default::default() };
    let last = Metadata {
        recorder: "damo-trace 0.1.0".into(),
        command_line: vec!["damo-trace".into(), "record".into(), "ls -l".into()],
        hostname: "box".into(),
        kernel_release: "6.12.117".into(),
        nr_cpus: 2,
        sample_hz: 499,
        realtime_offset_ns: Some(1_700_000_000_000_000_000),
        damon: Some(serde_json::json!({"kdamonds": [{"contexts": []}]})),
    };
    let mut w = NativeWriter::new(Vec::new()).unwrap();
    w.metadata(&first).unwrap();
    w.metadata(&last).unwrap();
    let bytes = w.finish().unwrap();
    assert_eq!(read(&bytes).unwrap().record.metadata, Some(last));
    // A record without it (damo's, older ones) says nothing rather than something wrong.
    let none = read(&NativeWriter::new(Vec::new()).unwrap().finish().unwrap()).unwrap().record;
    assert_eq!(none.metadata, None);
}

#[test]
fn past_the_memory_limit_is_an_error_not_damage() {
    let (record, bytes) = sample_record();
    let mut meter = crate::budget::Meter::with_limit(1 << 20);
    let read = super::read_with(&bytes, &mut meter).expect("the record fits in 1 MiB");
    assert_eq!(read.record, record);
    assert!(meter.used() > 0, "what the record holds is charged");
    // Every limit below what the record takes fails as such, wherever the reader is.
    let needed = meter.used();
    for limit in [0, 64, needed / 2, needed - 1] {
        match super::read_with(&bytes, &mut crate::budget::Meter::with_limit(limit)) {
            Err(NativeError::OverBudget(e)) => assert_eq!(e.limit, limit),
            other => panic!("limit {limit} of {needed}: {other:?}"),
        }
    }
}

/// `record` written as [`write_all`] writes it, in key groups of `every` snapshots of a target.
pub(super) fn write_grouped(record: &Record, every: u32) -> Vec<u8> {
    write_with(NativeWriter::new(Vec::new()).unwrap().with_key_every(every), record)
}

/// Two targets in key groups of 6 snapshots, with stack samples and footprints between their
/// snapshots (which end Snapshot chunks, not groups), and its bytes.
pub(super) fn grouped_record() -> (Record, Vec<u8>) {
    let mut w = NativeWriter::new(Vec::new()).unwrap().with_key_every(6);
    let mut expected = Record::default();
    let (mut a, mut b) = (target(1), target(2));
    for t in 0..40 {
        for (tr, n) in [(&mut a, 30 + t % 7), (&mut b, 4)] {
            let s = snapshot(t, n);
            w.snapshot(tr, &s).unwrap();
            tr.snapshots.push(s);
        }
        if t % 4 == 1 {
            let samples = vec![sample(t * 1000), sample(t * 1000 + 7)];
            w.stacks(&samples).unwrap();
            expected.samples.extend(samples);
        }
        if t % 9 == 3 {
            let f = FootprintSnapshot { ts_ns: t, system: None, processes: vec![ProcessFootprint { pid: 42, vsz: t, rss: 2, shared: 0, text: 1, data: 3 }] };
            w.footprints(std::slice::from_ref(&f)).unwrap();
            expected.footprints.push(f);
        }
    }
    expected.targets = vec![a, b];
    (expected, w.finish().unwrap())
}

/// Each chunk: where it starts, its kind and flags, and where the next one starts.
fn chunks(bytes: &[u8]) -> Vec<(usize, u16, u16, usize)> {
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let kind = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let flags = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let mut next = pos + CHUNK_HEADER_LEN;
        if len == OPEN_LEN {
            loop {
                let mut p = &bytes[next..];
                let head = codec::get_varint(&mut p).unwrap();
                next = bytes.len() - p.len() + (head >> 1) as usize + if head & 1 != 0 { 4 } else { 0 };
                if head >> 1 == 0 {
                    break;
                }
            }
        } else {
            next += len as usize;
        }
        out.push((pos, kind, flags, next));
        pos = next;
    }
    out
}

/// Version 3: a key group decodes on its own. Spliced after the Target chunks alone, the
/// groups from any key chunk on read as the snapshots they hold, exactly.
#[test]
fn key_groups_round_trip_and_decode_on_their_own() {
    let record = crate::synth::record(crate::synth::SynthSpec { targets: 3, snapshots_per_target: 100, regions: 40, seed: 11 });
    let bytes = write_grouped(&record, 16);
    let whole = read(&bytes).unwrap();
    assert!(whole.complete);
    assert_eq!(whole.record, record);
    let chunks = chunks(&bytes);
    let keys: Vec<usize> = chunks.iter().filter(|c| c.1 == ChunkKind::Snapshot as u16 && c.2 & FLAG_KEY != 0).map(|c| c.0).collect();
    assert_eq!(keys.len(), 100 / 16 + 1, "a group every 16 snapshots of a target");
    assert_eq!(keys[0], chunks.iter().find(|c| c.1 == ChunkKind::Snapshot as u16).unwrap().0, "the first Snapshot chunk starts a group");
    let mut targets = bytes[..HEADER_LEN].to_vec();
    for c in chunks.iter().filter(|c| c.1 == ChunkKind::Target as u16) {
        targets.extend(&bytes[c.0..c.3]);
    }
    for &key in &keys[1..] {
        let mut spliced = targets.clone();
        spliced.extend(&bytes[key..]);
        let tail = read(&spliced).unwrap();
        assert!(tail.complete && tail.damaged_at.is_none(), "from {key}");
        for (got, want) in tail.record.targets.iter().zip(&record.targets) {
            assert!(!got.snapshots.is_empty() && got.snapshots.len() < want.snapshots.len(), "from {key}");
            assert_eq!(got.snapshots[..], want.snapshots[want.snapshots.len() - got.snapshots.len()..], "from {key}");
        }
    }
    // The same bytes said to be version 2 (no key groups) code key frames against the
    // snapshots before them: they do not read the same.
    let mut as_v2 = bytes.clone();
    as_v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    let v2 = read(&as_v2).unwrap();
    assert_ne!((v2.record.targets, v2.damaged_at), (record.targets, None));
}

/// Groups end at a target's count of snapshots, not at other chunks, which end Snapshot
/// chunks every second or so in a recording.
#[test]
fn other_chunks_do_not_end_key_groups() {
    let (expected, bytes) = grouped_record();
    let read = read(&bytes).unwrap();
    assert!(read.complete);
    assert_eq!(read.record, expected);
    let chunks = chunks(&bytes);
    let snapshot_chunks = chunks.iter().filter(|c| c.1 == ChunkKind::Snapshot as u16).count();
    let keys = chunks.iter().filter(|c| c.1 == ChunkKind::Snapshot as u16 && c.2 & FLAG_KEY != 0).count();
    assert_eq!(keys, 40 / 6 + 1, "{:?}", chunks.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>());
    assert!(snapshot_chunks > keys + 10, "{snapshot_chunks} Snapshot chunks, {keys} key ones");
}

/// A cut or a flipped byte anywhere in a record of key groups keeps what is before it, as in
/// one group.
#[test]
fn damage_in_key_groups_keeps_the_snapshots_before_it() {
    let record = crate::synth::record(crate::synth::SynthSpec { targets: 2, snapshots_per_target: 40, regions: 12, seed: 5 });
    let bytes = write_grouped(&record, 7);
    let mut last = 0;
    for cut in HEADER_LEN..bytes.len() {
        let read = read(&bytes[..cut]).unwrap();
        let n: usize = read.record.targets.iter().map(|t| t.snapshots.len()).sum();
        assert!(n >= last, "cut at {cut} lost snapshots a shorter cut had");
        last = n;
        for (got, want) in read.record.targets.iter().zip(&record.targets) {
            assert_eq!(got.snapshots[..], want.snapshots[..got.snapshots.len()], "cut at {cut}");
        }
    }
    assert_eq!(last, 80);
    for at in HEADER_LEN..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        let read = read(&bad).unwrap();
        for (got, want) in read.record.targets.iter().zip(&record.targets) {
            assert_eq!(got.snapshots[..], want.snapshots[..got.snapshots.len()], "byte {at} flipped");
        }
    }
}

/// A version-2 record made by a real recording (tests/data/vm/callers.dtr) reads as it did
/// before version 3: snapshots coded against their predecessors across chunks. The numbers
/// are those the version-2 reader read (its `report raw` output was byte-identical).
#[test]
fn a_version_2_record_reads_as_before() {
    let bytes = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vm/callers.dtr")).unwrap();
    assert_eq!(bytes[8..12], 2u32.to_le_bytes(), "the fixture is a version-2 record");
    let read = read(&bytes).unwrap();
    assert!(read.complete && read.damaged_at.is_none());
    let mut digest = (0usize, 0usize, 0u64);
    for t in &read.record.targets {
        for s in &t.snapshots {
            digest.0 += 1;
            digest.1 += s.regions.len();
            for r in &s.regions {
                digest.2 = digest.2.wrapping_mul(31).wrapping_add(r.start ^ r.end.rotate_left(17) ^ u64::from(r.nr_accesses) << 40 ^ u64::from(r.age.unwrap_or(u32::MAX)));
            }
            digest.2 = digest.2.wrapping_mul(31).wrapping_add(s.start_ns ^ s.end_ns.rotate_left(7));
        }
    }
    assert_eq!(digest, V2_DIGEST);
}
const V2_DIGEST: (usize, usize, u64) = (106, 11_254, 1_870_548_043_363_410_755);
