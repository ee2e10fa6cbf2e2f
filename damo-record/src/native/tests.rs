use super::*;
use crate::model::*;

fn target(id: u64) -> TargetRecord {
    TargetRecord {
        kdamond_idx: 0,
        context_idx: 0,
        scheme_idx: None,
        target_id: id,
        intervals: Some(Intervals { sample_us: 5000, aggr_us: 100_000, ops_update_us: 1_000_000 }),
        snapshots: Vec::new(),
    }
}

fn snapshot(t: u64, n: u64) -> Snapshot {
    let regions = (0..n)
        .map(|i| Region { start: 0x7f00_0000_0000 + i * 8192, end: 0x7f00_0000_0000 + i * 8192 + 4096, nr_accesses: (i % 20) as u32, age: Some((t % 7) as u32) })
        .collect();
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
fn sample_record() -> (Record, Vec<u8>) {
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
    let losses = Losses { kernel: [1, 2, 3, 4], incomplete_snapshots: 5, unnormalized_samples: 6, undecodable_events: 7 };
    w.losses(&losses).unwrap();
    let bytes = w.finish().unwrap();
    expected.targets = vec![a, b];
    expected.modules = modules;
    expected.samples = samples;
    expected.kernel_symbols = symbols;
    expected.losses = Some(losses);
    (expected, bytes)
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
    let payload = b"from the future";
    let mut chunk = Vec::new();
    chunk.extend(999u16.to_le_bytes());
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
    let read = read(&spliced).unwrap();
    assert!(read.complete);
    assert_eq!(read.record, expected);
}
