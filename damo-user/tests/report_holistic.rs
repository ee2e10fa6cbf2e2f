//! `report holistic` on a record with planted phases (as in `report_phases.rs`): three
//! 3-second phases, each making a different buffer hot while a different function runs.
//! The page must have its three panels, name every function, and mark exactly the two
//! boundaries between the phases, where they are.

mod differential;
mod planted;

use damo_record::{model::StackSample, native::NativeWriter};
use differential::ours;
use planted::{CALLER, PHASES};

/// The phase labels of a page ("phase N: function").
fn phase_labels(svg: &str) -> Vec<String> {
    let doc = parse(svg);
    doc.descendants().filter(|n| has_class(n, "phase-label")).map(|n| n.children().filter(|t| t.is_text()).filter_map(|t| t.text()).collect()).collect()
}

#[test]
fn labels_name_the_caller_not_the_shared_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("callers.dtr");
    planted::write_callers(&rec, 5);
    let out = dir.path().join("report.svg");
    holistic(&rec, &out);
    let labels = phase_labels(&std::fs::read_to_string(&out).unwrap());
    let want: Vec<String> = PHASES.iter().enumerate().map(|(i, p)| format!("phase {}: {}", i + 1, p.2)).collect();
    assert_eq!(labels, want);
}

fn holistic(rec: &std::path::Path, out: &std::path::Path) {
    let (ok, _, err) = ours(&["report", "holistic", "-i", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(ok, "report holistic -o {} failed: {err}", out.display());
    // To look at the pages: DAMO_TRACE_KEEP_OUTPUT=DIR keeps a copy of each.
    if let Some(keep) = std::env::var_os("DAMO_TRACE_KEEP_OUTPUT") {
        let copy = std::path::Path::new(&keep).join(format!("{}-{}", rec.file_stem().unwrap().to_string_lossy(), out.file_name().unwrap().to_string_lossy()));
        std::fs::copy(out, &copy).unwrap_or_else(|e| panic!("failed to keep {}: {e}", copy.display()));
    }
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(svg, roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }).unwrap_or_else(|e| panic!("the SVG is not XML: {e}"))
}

fn has_class(n: &roxmltree::Node, class: &str) -> bool {
    n.attribute("class").is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

/// Everything the page says, tooltips included.
fn all_text(doc: &roxmltree::Document) -> String {
    doc.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect::<Vec<_>>().join("\n")
}

/// Checks the page and returns the x of each phase boundary.
fn check_page(svg: &str, with_samples: bool) -> Vec<f64> {
    let doc = parse(svg);
    for id in ["heatmap-panel", "wss-panel", "timeline-panel"] {
        let panel = doc.descendants().find(|n| n.attribute("id") == Some(id)).unwrap_or_else(|| panic!("no {id}"));
        assert!(panel.descendants().any(|n| n.has_tag_name("rect")), "{id} draws nothing");
    }
    let heat_cells = doc.descendants().find(|n| n.attribute("id") == Some("heatmap-panel")).unwrap().descendants().filter(|n| n.has_tag_name("rect")).count();
    assert!(heat_cells > 50, "the heatmap has only {heat_cells} rects");
    let text = all_text(&doc);
    if with_samples {
        let labels: Vec<String> = doc.descendants().filter(|n| has_class(n, "function-label")).map(|n| n.descendants().filter(|t| t.is_text()).filter_map(|t| t.text()).collect()).collect();
        for &(_, _, function) in &PHASES {
            assert!(labels.iter().any(|l| l == function), "no timeline row for {function}: {labels:?}");
        }
        assert!(labels.iter().any(|l| l == "caller"), "no timeline row for caller: {labels:?}");
        for (i, &(_, _, function)) in PHASES.iter().enumerate() {
            assert!(text.contains(&format!("phase {}: {function}", i + 1)), "phase {} is not labelled with {function}:\n{text}", i + 1);
        }
    } else {
        assert!(doc.descendants().any(|n| has_class(&n, "no-samples")), "the timeline does not say there are no samples");
        assert!(!text.contains("phase_scan"));
    }
    let boundaries: Vec<roxmltree::Node> = doc.descendants().filter(|n| has_class(n, "phase-boundary")).collect();
    assert_eq!(boundaries.len(), 2, "three planted phases have two boundaries");
    boundaries.iter().map(|b| b.descendants().find(|n| n.has_tag_name("line")).unwrap().attribute("x1").unwrap().parse().unwrap()).collect()
}

#[test]
fn one_page_with_three_panels_and_the_planted_phases() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("planted.dtr");
    planted::write(&rec);

    let svg_path = dir.path().join("report.svg");
    holistic(&rec, &svg_path);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let xs = check_page(&svg, true);
    // The heatmap spans the 9 s of snapshots; the boundaries are at 3 s and 6 s, a third and
    // two thirds along the plot, wherever the plot is.
    let doc = parse(&svg);
    let frame = doc.descendants().find(|n| n.attribute("id") == Some("wss-panel")).unwrap().descendants().rfind(|n| n.has_tag_name("rect")).unwrap();
    let (left, width): (f64, f64) = (frame.attribute("x").unwrap().parse().unwrap(), frame.attribute("width").unwrap().parse().unwrap());
    for (x, third) in xs.iter().zip([1.0, 2.0]) {
        let want = left + width * third / 3.0;
        assert!((x - want).abs() < 1.0, "a boundary at x {x}, expected {want} ({xs:?})");
    }

    let png_path = dir.path().join("report.png");
    holistic(&rec, &png_path);
    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "report.png is not a PNG");
    assert!(png.len() > 10_000, "report.png is only {} bytes", png.len());

    let html_path = dir.path().join("report.html");
    holistic(&rec, &html_path);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let start = html.find("<svg").expect("the page has its SVG inline");
    let end = html.find("</svg>").unwrap() + "</svg>".len();
    check_page(&html[start..end], true);
    let table = &html[html.find(r#"<table id="phases">"#).expect("the page has a phase table")..];
    assert_eq!(table.matches("<tr><td").count(), 3, "one row per phase");
    for &(_, _, function) in &PHASES {
        assert!(table.contains(&format!("90.0% <code>{function}</code>")), "the table does not give {function} 90% of its phase:\n{table}");
    }
}

#[test]
fn without_samples_the_page_still_has_heatmap_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("accesses-only.dtr");
    planted::write_named(&rec, false, &PHASES.map(|p| p.2));
    let out = dir.path().join("report.svg");
    holistic(&rec, &out);
    check_page(&std::fs::read_to_string(&out).unwrap(), false);
}

#[test]
fn needs_snapshots_and_a_known_output_type() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("stacks-only.dtr");
    let mut w = NativeWriter::new(std::fs::File::create(&rec).unwrap()).unwrap();
    w.stacks(&[StackSample { ts_ns: 1, pid: 1, tid: 1, cpu: 0, comm: "x".into(), user: vec![], kernel: vec![CALLER] }]).unwrap();
    w.finish().unwrap();
    let (ok, _, err) = ours(&["report", "holistic", "-i", rec.to_str().unwrap(), "-o", dir.path().join("r.svg").to_str().unwrap()]);
    assert!(!ok && err.contains("no DAMON snapshots"), "{err}");
    let (ok, _, err) = ours(&["report", "holistic", "-i", rec.to_str().unwrap(), "-o", "r.pdf"]);
    assert!(!ok && err.contains("unsupported type"), "{err}");
}

#[test]
fn long_names_are_cut_with_the_full_name_as_tooltip() {
    let names = ["std::collections::hash::map::HashMap<K,V,S>::insert", "fft::radix2::butterfly<std::complex<double>>(std::complex<double>*, unsigned long)", "short"];
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("long-names.dtr");
    planted::write_named(&rec, true, &names);
    let out = dir.path().join("report.png");
    holistic(&rec, &out);
    let out = dir.path().join("report.svg");
    holistic(&rec, &out);
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = parse(&svg);
    for name in names {
        let label = doc.descendants().find(|n| has_class(n, "function-label") && n.descendants().any(|t| t.text() == Some(name))).unwrap_or_else(|| panic!("no row for {name}"));
        let shown: String = label.children().filter(|t| t.is_text()).filter_map(|t| t.text()).collect();
        if name == "short" {
            assert_eq!(shown, name);
        } else {
            assert!(shown.contains('…') && shown.chars().count() < name.chars().count(), "{name} shown as {shown}");
            assert!(label.children().any(|t| t.has_tag_name("title") && t.text() == Some(name)), "{name} has no tooltip");
        }
    }
}
