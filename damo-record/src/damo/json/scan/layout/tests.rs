use super::*;
use crate::{
    damo::json::scan::tests::{scan, serde, written},
    synth::{self, SynthSpec},
};

/// Where each region of `text` starts (just after its `{`).
fn region_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    for (list, _) in text.windows(12).enumerate().filter(|(_, w)| w == b"\"regions\": [") {
        let mut depth = 0;
        for (i, &b) in text.iter().enumerate().skip(list + 11) {
            match b {
                b'{' | b'[' => {
                    if depth == 1 && b == b'{' {
                        starts.push(i + 1);
                    }
                    depth += 1;
                }
                b'}' | b']' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
        }
    }
    starts
}

#[test]
fn damos_regions_are_read_in_the_layout() {
    let record = synth::record(SynthSpec { targets: 2, snapshots_per_target: 3, regions: 5, seed: 3 });
    let text = written(&record);
    let starts = region_starts(&text);
    let regions: Vec<_> = record.targets.iter().flat_map(|t| &t.snapshots).flat_map(|s| &s.regions).collect();
    assert_eq!(starts.len(), regions.len());
    let mut layout = None;
    for (&at, want) in starts.iter().zip(regions) {
        let (read, len) = RegionLayout::read(&mut layout, &text[at..]).unwrap_or_else(|| panic!("not in the layout: {}", String::from_utf8_lossy(&text[at..at + 600])));
        assert_eq!((read.start.0, read.end.0), (want.start, want.end));
        assert_eq!(read.nr_accesses.and_then(|n| n.samples).map(|s| s.0), Some(i64::from(want.nr_accesses)));
        assert_eq!(read.age.and_then(|a| a.aggr_intervals).map(|a| a.0), want.age.map(i64::from));
        assert_eq!(text[at + len - 1], b'}');
    }
}

/// Every one-byte change to a region (and to the start of the next, which repeats its end):
/// whatever the scanner reads is what serde reads.
#[test]
fn every_change_to_a_region_reads_as_serde_reads_it() {
    let text = written(&synth::record(SynthSpec { targets: 1, snapshots_per_target: 1, regions: 3, seed: 4 }));
    let starts = region_starts(&text);
    let (from, to) = (starts[1] - 1, starts[2] + 60);
    let (mut read, mut left) = (0, 0);
    for at in from..to {
        for change in [Some(b' '), Some(b'"'), Some(b'0'), Some(b'7'), Some(b','), Some(b'\n'), Some(b'x'), Some(b'-'), Some(b'}'), None] {
            let mut changed = text.clone();
            match change {
                Some(b) if changed[at] == b => continue,
                Some(b) => changed[at] = b,
                None => {
                    changed.remove(at);
                }
            }
            match scan(&changed, changed.len()) {
                Ok(record) => {
                    read += 1;
                    let want = serde(&changed).unwrap_or_else(|e| panic!("serde refuses what the scanner read ({e}): {}", String::from_utf8_lossy(&changed[from..to])));
                    assert_eq!(record, want, "{}", String::from_utf8_lossy(&changed[from..to]));
                }
                Err(_) => left += 1,
            }
        }
    }
    assert!(read > 300 && left > 1000, "{read} read, {left} left to serde");
}

#[test]
fn a_region_cut_by_the_block_end_is_not_read_here() {
    let text = written(&synth::record(SynthSpec { targets: 1, snapshots_per_target: 1, regions: 2, seed: 5 }));
    let at = region_starts(&text)[0];
    let mut layout = None;
    let (_, len) = RegionLayout::read(&mut layout, &text[at..]).expect("the whole region is read");
    for cut in 0..len {
        assert!(RegionLayout::read(&mut layout, &text[at..at + cut]).is_none(), "cut after {cut} bytes");
    }
}

#[test]
fn quoted_numbers_read_as_plain_int_reads_them() {
    for text in ["72", "0", "93,823,560,581,120", "999,999,999,999,999", "1,000,000,000,000,000", "1,2345", "12,34", ",123", "1,,234", "1234,567", "", "4,096 B", "0 B", "5 KiB", "1,23a", "1:234"] {
        for suffix in ["", " B"] {
            let quoted = format!("{text}\"tail");
            let want = crate::damo::json::plain_int(text.strip_suffix(suffix).unwrap_or(text).as_bytes()).map(|v| (v as u64, text.len() + 1));
            if let Some(got) = quoted_number(quoted.as_bytes(), suffix.as_bytes()) {
                assert_eq!(Some(got), want, "{text:?} with suffix {suffix:?}");
            }
        }
    }
    assert_eq!(quoted_number(b"93,823,560,581,120\"", b""), Some((93_823_560_581_120, 19)));
    assert_eq!(quoted_number(b"0 B\"", b" B"), Some((0, 4)));
    assert_eq!(quoted_number(b"4,096\"", b" B"), Some((4096, 6)));
}

#[test]
fn stretches_compare_as_starts_with_does() {
    let lit: Vec<u8> = (0..140u8).map(|i| b' ' + i % 90).collect();
    for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130] {
        let lit = &lit[..n];
        let mut hay = [lit, b"tail"].concat();
        assert!(starts_with(&hay, lit) && !starts_with(&hay[..n.saturating_sub(1)], lit) || n == 0);
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        for i in 0..n {
            hay[i] ^= 1;
            assert!(!starts_with(&hay, lit), "{n} bytes, changed at {i}");
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2.
                assert!(!unsafe { avx2::starts_with(&hay, lit) }, "{n} bytes, changed at {i}");
            }
            hay[i] ^= 1;
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU has AVX2.
            assert!(unsafe { avx2::starts_with(&hay, lit) });
        }
    }
}
