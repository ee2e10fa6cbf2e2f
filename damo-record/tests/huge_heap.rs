//! `huge_heap::reserve` on the main thread: the room it returns is the heap's, advised for
//! huge pages, and a record's allocations made after it are backed by them.

use damo_record::huge_heap;

/// The name, huge-page bytes and flags of the mapping that holds `address` (/proc/self/smaps).
fn mapping_at(address: usize) -> Option<(String, u64, String)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (mut name, mut huge) = (None, 0);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
            name = (lo..hi).contains(&address).then(|| words.nth(4).unwrap_or_default().to_owned());
        } else if let (Some(_), Some(kb)) = (&name, line.strip_prefix("AnonHugePages:")) {
            huge = kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? << 10;
        } else if let (Some(name), Some(flags)) = (&name, line.strip_prefix("VmFlags:")) {
            return Some((name.clone(), huge, flags.to_owned()));
        }
    }
    None
}

fn main() {
    assert_eq!(huge_heap::reserve(1 << 20), None, "a small record asks for no room");
    let Some(room) = huge_heap::reserve(64 << 20) else {
        assert!(!huge_heap::thp_on_request() || cfg!(not(target_env = "gnu")), "huge pages are given on request here, yet no room was advised");
        println!("huge_heap: skipped, no transparent huge pages on request here");
        return;
    };
    assert!(room.len() >= 60 << 20, "{room:x?} is short of the record's 64 MiB");
    for at in [room.start, room.end - 1] {
        let (name, _, flags) = mapping_at(at).expect("the advised room is mapped");
        assert_eq!(name, "[heap]");
        assert!(flags.split_whitespace().any(|f| f == "hg"), "not advised for huge pages: {flags}");
    }
    // What a record's snapshots allocate next comes from the room, in huge pages.
    let snapshots: Vec<Vec<[u64; 4]>> = (0..4000).map(|i| vec![[i; 4]; 250]).collect();
    let at = snapshots[2000].as_ptr() as usize;
    assert!(room.contains(&at), "a snapshot allocated after the reserve is outside the room: {at:x} vs {room:x?}");
    let (_, huge, _) = mapping_at(at).expect("the snapshot is mapped");
    assert!(huge >= 8 << 20, "the record's 32 MB are in {huge} bytes of huge pages");
    println!("huge_heap: ok, {} MiB of the record in huge pages", huge >> 20);
}
