//! The frame the SVG charts share (`chart`'s line charts, `heatmap::svg`'s maps): the white
//! canvas, the plot area's border, ticks with their labels outside its bottom and left
//! edges, and the two axis titles. One drawing, so the charts of one report look alike.

use std::fmt::Write;

use crate::xml::escape;

/// A tick's length, outward from the plot area.
const TICK: f64 = 5.0;

/// The canvas and where the plot area is in it (pixels).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub top: f64,
    pub plot_w: f64,
    pub plot_h: f64,
}

impl Frame {
    /// The plot area's bottom edge.
    pub fn bottom(&self) -> f64 {
        self.top + self.plot_h
    }

    /// The `<svg>` element (with `attrs` added) and its white canvas.
    pub fn open(&self, s: &mut String, attrs: &str) {
        let (w, h) = (self.width, self.height);
        let _ = writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, sans-serif" font-size="12"{attrs}>"#);
        let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    }

    /// The plot area's border.
    pub fn border(&self, s: &mut String) {
        let _ = writeln!(s, r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="black"/>"#, self.left, self.top, self.plot_w, self.plot_h);
    }

    /// A tick at `x` below the plot area, labelled `label`.
    pub fn x_tick(&self, s: &mut String, x: f64, label: &str) {
        let b = self.bottom();
        let _ = writeln!(s, r#"<line x1="{x:.2}" y1="{b}" x2="{x:.2}" y2="{}" stroke="black"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#, b + TICK, b + 20.0, escape(label));
    }

    /// A tick at `y` left of the plot area, labelled `label`.
    pub fn y_tick(&self, s: &mut String, y: f64, label: &str) {
        let l = self.left;
        let _ = writeln!(s, r#"<line x1="{}" y1="{y:.2}" x2="{l}" y2="{y:.2}" stroke="black"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"#, l - TICK, l - 8.0, y + 4.0, escape(label));
    }

    /// The titles of the x axis (under its tick labels) and the y axis (turned, at the left).
    pub fn titles(&self, s: &mut String, x_title: &str, y_title: &str) {
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#, self.left + self.plot_w / 2.0, self.bottom() + 42.0, escape(x_title));
        let (lx, ly) = (18.0, self.top + self.plot_h / 2.0);
        let _ = writeln!(s, r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">{}</text>"#, escape(y_title));
    }
}
