//! Tier 1: `top`'s screen, drawn into ratatui's test backend from the stream a three-phase
//! record replays. Each phase makes a different 16 MiB buffer hot and runs a different
//! function (three functions of this test binary, named by the same symbolizer as `top`);
//! after each phase the screen must show that phase's band hot, its WSS, its function at the
//! top, and one phase marker per boundary so far. The header counts what the recording lost.

use damo_record::model::{FileAddr, Intervals, Losses, Module, Record, Region, Snapshot, StackSample, TargetRecord};
use damo_user::live::{feed::Feed, model::LiveModel, plain, replay, ui};
use ratatui::{backend::TestBackend, Terminal};

#[no_mangle]
#[inline(never)]
pub extern "C" fn live_phase_one() -> u64 {
    std::hint::black_box(1)
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn live_phase_two() -> u64 {
    std::hint::black_box(2)
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn live_phase_three() -> u64 {
    std::hint::black_box(3)
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BASE: u64 = 0x7f00_0000_0000;
const AGGR_NS: u64 = 100_000_000;
/// Snapshots per phase: 3 s at 100 ms.
const PHASE: u64 = 30;
const FUNCTIONS: [&str; 3] = ["live_phase_one", "live_phase_two", "live_phase_three"];

/// Where buffer `i` starts: 1 GiB apart, so each is a band of its own.
fn buffer(i: u64) -> (u64, u64) {
    let start = BASE + i * (GIB + 16 * MIB);
    (start, start + 16 * MIB)
}

/// The file offset of a function of this test binary, from our own mappings.
fn file_offset(addr: u64) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (range, offset) = (fields[0], fields[2]);
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
        if (start..end).contains(&addr) {
            return addr - start + u64::from_str_radix(offset, 16).unwrap();
        }
    }
    panic!("{addr:#x} is in none of our mappings");
}

/// Three phases of [`PHASE`] snapshots; buffer 3 is never touched. Twenty samples per
/// snapshot in the phase's function.
fn three_phases() -> Record {
    let addrs = [live_phase_one as *const () as u64, live_phase_two as *const () as u64, live_phase_three as *const () as u64];
    let mut snapshots = Vec::new();
    let mut samples = Vec::new();
    for i in 0..3 * PHASE {
        let phase = i / PHASE;
        let start_ns = 1_000_000_000 + i * AGGR_NS;
        let regions = (0..4)
            .map(|b| {
                let (start, end) = buffer(b);
                Region { start, end, nr_accesses: if b == phase { 18 } else { 0 }, age: None }
            })
            .collect();
        snapshots.push(Snapshot { start_ns, end_ns: start_ns + AGGR_NS, regions, total_bytes: None });
        for k in 0..20 {
            let user = vec![FileAddr { module: 0, offset: file_offset(addrs[phase as usize]) }];
            samples.push(StackSample { ts_ns: start_ns + (k + 1) * AGGR_NS / 20, pid: 42, tid: 42, cpu: 0, comm: "phases".into(), user, kernel: Vec::new() });
        }
    }
    let target = TargetRecord { intervals: Some(Intervals { sample_us: 5000, aggr_us: 100_000, ops_update_us: 1_000_000 }), snapshots, ..Default::default() };
    Record { targets: vec![target], samples, modules: vec![Module { path: std::env::current_exe().unwrap(), build_id: None }], ..Default::default() }
}

fn screen(model: &LiveModel) -> (Vec<String>, TestBackend) {
    screen_of_width(model, 100)
}

fn screen_of_width(model: &LiveModel, width: u16) -> (Vec<String>, TestBackend) {
    let mut terminal = Terminal::new(TestBackend::new(width, 40)).unwrap();
    terminal.draw(|f| ui::draw(f, model, &ui::ViewState::default())).unwrap();
    let backend = terminal.backend().clone();
    let buffer = backend.buffer();
    let lines = (0..buffer.area.height).map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect::<String>()).collect();
    (lines, backend)
}

#[test]
fn each_phase_shows_its_band_wss_function_and_marker() {
    let record = three_phases();
    let mut model = LiveModel::new(600, None);
    let mut seen = 0;
    for feed in replay::feeds(&record) {
        let tick = model.push(feed);
        // The tick at each phase's end (record time 4 s, 7 s, 10 s).
        let Some(phase) = (tick && model.totals.snapshots == (seen + 1) * PHASE).then_some(seen as usize) else { continue };
        seen += 1;
        let (lines, _) = screen(&model);
        let text = lines.join("\n");
        if std::env::var_os("DAMO_LIVE_PRINT").is_some() {
            println!("{text}");
        }
        assert!(text.contains("WSS 16.0 MiB"), "phase {phase}: the WSS is one buffer:\n{text}");
        // The function list: its first row is the phase's function, alone.
        let header = lines.iter().position(|l| l.contains("share") && l.contains("symbol")).expect("the function list");
        assert!(lines[header + 1].contains("100.0%") && lines[header + 1].contains(FUNCTIONS[phase]), "phase {phase}: top function:\n{text}");
        // One marker per boundary so far.
        let marks = lines.iter().find(|l| l.contains("phase ") && !l.contains("phase since")).map_or(0, |l| l.matches('▼').count());
        assert_eq!(marks, phase, "phase {phase}: markers:\n{text}");
        if phase > 0 {
            assert!(text.contains(&format!("phase since {}.0s: {} 100%", 3 * phase, FUNCTIONS[phase])), "phase {phase}: the phase line:\n{text}");
        }
        // The newest column of the heatmap: dark in the phase's band, empty elsewhere.
        let newest = 1 + 16 + model.targets[0].snapshots().len().min(100 - 2 - 16) - 1;
        // The heatmap's inner area is 21 rows: the marker row, then the bands' rows.
        let bands = &model.targets[0].bands;
        let rows_each = 20 / bands.len();
        for b in 0..=phase as u64 {
            // Bands are padded by a twentieth: the band that holds the buffer.
            let band = bands.iter().find(|&&(lo, hi)| lo <= buffer(b).0 && buffer(b).1 <= hi).expect("a band per buffer touched");
            let label = format!("{:#x}", band.1);
            let row = lines.iter().position(|l| l.contains(&label)).unwrap_or_else(|| panic!("no label {label}:\n{text}"));
            let cells: String = lines[row..row + rows_each].iter().map(|l| l.chars().nth(newest).unwrap()).collect();
            let hot = b == phase as u64;
            assert_eq!(cells.contains('█'), hot, "phase {phase}: newest cells {cells:?} of buffer {b}'s band:\n{text}");
            assert_eq!(cells.trim().is_empty(), !hot, "phase {phase}: newest cells {cells:?} of buffer {b}'s band:\n{text}");
        }
        // The plain block says the same.
        let block = plain::block(&model);
        assert!(block.contains(FUNCTIONS[phase]) && block.contains("wss 16.0 MiB"), "{block}");
    }
    assert_eq!(seen, 3, "a screen after each phase");
}

#[test]
fn an_empty_stream_draws_an_empty_screen() {
    let (lines, _) = screen(&LiveModel::new(600, None));
    let text = lines.join("\n");
    assert!(text.contains("no DAMON snapshots (yet)") && text.contains("q quit"), "{text}");
}

#[test]
fn the_header_counts_what_the_recording_lost() {
    let mut model = LiveModel::new(600, None);
    let (lines, _) = screen(&model);
    assert!(lines[2].contains("lost 0  "), "nothing lost yet:\n{}", lines.join("\n"));
    // As the collector reports them at each tick: ring buffers full, a stack unreadable.
    let losses = Losses { kernel: [4, 2, 1, 0], incomplete_snapshots: 1, ..Default::default() };
    model.push(Feed::Losses(losses));
    assert!(model.push(Feed::Tick), "new losses are worth a redraw");
    let (lines, _) = screen_of_width(&model, 200);
    let header = &lines[2];
    assert!(header.contains("lost 8 (region events: ring buffer full 4, stack samples: ring buffer full 2, stack samples: stacks unreadable 1, snapshots: incomplete 1)"), "{}", lines.join("\n"));
    assert!(plain::block(&model).lines().next().unwrap().ends_with(", 8 lost"), "{}", plain::block(&model));
    assert!(!model.push(Feed::Tick), "nothing new since the last tick: no redraw");
    model.push(Feed::Losses(losses));
    assert!(!model.push(Feed::Tick), "the same losses again: no redraw");
}

/// `w`'s record: every snapshot and sample the view kept, in the native format that
/// `report record_info` and `report raw` read.
#[test]
fn w_writes_what_the_view_kept_as_a_record() {
    let record = three_phases();
    let mut model = LiveModel::new(600, None);
    let feeds = replay::feeds(&record);
    // Stopped in the middle of the second phase, as a user pressing `w` would.
    let mut kept = 0;
    for feed in feeds {
        model.push(feed);
        kept += 1;
        if model.totals.snapshots == PHASE + PHASE / 2 {
            break;
        }
    }
    assert!(kept > 0);
    let dir = tempfile::tempdir().unwrap();
    let said = damo_user::live::write_seen(&model, &Default::default(), dir.path()).unwrap();
    let path = dir.path().join(format!("damo-trace-top-{:.0}s.data", model.elapsed(model.last_ns)));
    assert_eq!(said, format!("wrote {}", path.display()));
    let read = damo_record::native::read(&std::fs::read(&path).unwrap()).expect("w's record reads back");
    assert!(read.complete);
    let (snapshots, samples, _) = model.history();
    let written: Vec<&Snapshot> = read.record.targets.iter().flat_map(|t| &t.snapshots).collect();
    assert_eq!(written.len() as u64, PHASE + PHASE / 2);
    assert_eq!(written, snapshots.iter().map(|(_, s)| s).collect::<Vec<_>>(), "the snapshots the view kept");
    assert_eq!(read.record.samples.len(), samples.len());
    assert_eq!(read.record.targets[0].intervals, record.targets[0].intervals);
    for report in [&["report", "record_info", "-i"][..], &["report", "raw", "-i"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_damo-trace")).args(report).arg(&path).output().unwrap();
        assert!(out.status.success(), "{report:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.trim().is_empty(), "{report:?} printed nothing");
        if report[1] == "raw" {
            // One `monitoring_start` per snapshot (damo's raw form).
            assert_eq!(text.matches("monitoring_start:").count() as u64, PHASE + PHASE / 2, "{text}");
        }
    }
}
