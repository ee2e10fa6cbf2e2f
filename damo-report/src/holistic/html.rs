//! The page as HTML: the SVG inline, then a table of the phases for reading the numbers.

use std::fmt::Write;

use super::{escape, size, svg, Holistic};

pub fn page(h: &Holistic) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>damo-trace: {title}</title>
<style>
body {{ font-family: "DejaVu Sans", sans-serif; font-size: 14px; margin: 16px; color: #222; }}
table {{ border-collapse: collapse; margin-top: 8px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
td.num {{ text-align: right; white-space: nowrap; }}
svg {{ max-width: 100%; height: auto; }}
code {{ font-size: 13px; }}
</style>
</head>
<body>
"#,
        title = escape(&h.title)
    );
    s.push_str(&svg::render(h));
    s.push_str("<h2>Phases</h2>\n");
    if h.phases.is_empty() {
        s.push_str("<p>No phases: the record has no snapshots of the main target.</p>\n");
    } else {
        phase_table(&mut s, h);
    }
    s.push_str("</body>\n</html>\n");
    s
}

fn phase_table(s: &mut String, h: &Holistic) {
    s.push_str(
        "<table id=\"phases\">\n<tr><th>Phase</th><th>Span (s)</th><th>Snapshots</th><th>Mean WSS</th><th>Hot ranges (access rate)</th><th>Responsible function (call chain to the hot leaf)</th><th>Top functions (share of the phase's samples)</th></tr>\n",
    );
    let secs = |ns: u64| (ns as f64 - h.time.0) / 1e9;
    for (i, p) in h.phases.iter().enumerate() {
        let ph = &p.phase;
        let hot: Vec<String> = ph.hot_ranges.iter().map(|&(a, b, heat)| format!("<code>{a:#x}-{b:#x}</code> ({}, {:.0}%)", size((b - a) as f64), heat * 100.0)).collect();
        let top: Vec<String> =
            if p.samples == 0 { vec!["no stack samples".into()] } else { p.top.iter().map(|(f, c)| format!("{:.1}% <code>{}</code>", *c as f64 * 100.0 / p.samples as f64, escape(f))).collect() };
        let responsible = match (&p.label, p.chain.len()) {
            (Some(f), 0) => format!("<code>{}</code>", escape(f)),
            (Some(_), _) => p.chain.iter().map(|f| format!("<code>{}</code>", escape(f))).collect::<Vec<_>>().join(" &gt; "),
            (None, _) => "none stands out".into(),
        };
        let _ = writeln!(
            s,
            r#"<tr><td class="num">{}</td><td class="num">{:.2}–{:.2}</td><td class="num">{}–{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            i + 1,
            secs(ph.start_ns),
            secs(ph.end_ns),
            ph.first,
            ph.last,
            size(ph.mean_wss as f64),
            hot.join("<br>"),
            responsible,
            top.join("<br>")
        );
    }
    s.push_str("</table>\n");
}
