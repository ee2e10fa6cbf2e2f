//! The union of address ranges: what a target's regions covered over a record, for the
//! phase finder's address space and `replay`'s mappings.

/// `ranges` (`[start, end)`, any order) sorted and merged where they overlap or touch.
pub fn union(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlapping_and_touching_ranges_merge() {
        assert_eq!(super::union(vec![(30, 40), (0, 10), (5, 20), (20, 25), (41, 50)]), [(0, 25), (30, 40), (41, 50)]);
        assert!(super::union(Vec::new()).is_empty());
    }
}
