//! `report pa_layout` against damo 3.4.3's on this machine (both read /proc/iomem, whose
//! addresses only root sees, and the NUMA nodes' memory blocks; nothing is written).

mod differential;

use differential::{damo, damo_report, ours_report};

#[test]
#[ignore = "needs root: /proc/iomem shows addresses only to root, and damo refuses to run otherwise"]
fn pa_layout_matches_damo_on_this_machine() {
    let Some(d) = damo() else { return };
    let dir = std::env::temp_dir();
    for args in [&["pa_layout"][..], &["pa_layout", "--raw_number"], &["pa_layout", "--numa_addr", "0"], &["pa_layout", "--numa_addr", "0", "--raw_number"]] {
        let theirs = damo_report(&d, args, &dir);
        let ours = ours_report(args, &dir);
        assert!(theirs.lines().count() >= 1, "damo printed nothing for {args:?}");
        assert_eq!(ours, theirs, "report {args:?} differs from damo's");
    }
    let listing = ours_report(&["pa_layout"], &dir);
    assert!(listing.contains("System RAM") && listing.contains("Default paddr monitoring range: ["), "{listing}");
}
