//! A hand-written SVG of the gateway comparison: throughput and p50 latency
//! against concurrency, one line per target, both on log scales (targets
//! differ by orders of magnitude). Written by `gateways --plot FILE`; no
//! plotting library, no fonts beyond the viewer's sans-serif.

use std::fmt::Write;

/// One measured point.
pub struct Point {
    pub target: &'static str,
    pub clients: usize,
    pub rate: f64,
    pub p50_us: f64,
}

const COLORS: &[&str] = &["#222222", "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
const W: f64 = 1060.0;
const H: f64 = 430.0;
const PANEL_W: f64 = 330.0;
const TOP: f64 = 50.0;
const PLOT_H: f64 = 300.0;
const LEFT: f64 = 70.0;

/// Grid values 1, 2, 5 × 10^k within [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

fn label(v: f64, unit: &str) -> String {
    match v {
        v if v >= 1e6 => format!("{}M{unit}", v / 1e6),
        v if v >= 1e3 => format!("{}k{unit}", v / 1e3),
        v => format!("{v}{unit}"),
    }
}

/// One panel at horizontal offset `x0`: `value` of each point against the level's index.
fn panel(
    svg: &mut String,
    x0: f64,
    title: &str,
    unit: &str,
    points: &[Point],
    levels: &[usize],
    value: fn(&Point) -> f64,
) {
    let values: Vec<f64> = points.iter().map(value).filter(|v| *v > 0.0).collect();
    let lo = 10f64.powf(values.iter().copied().fold(f64::INFINITY, f64::min).log10().floor());
    let hi = 10f64.powf(values.iter().copied().fold(0.0, f64::max).log10().ceil());
    let y = |v: f64| TOP + PLOT_H * (1.0 - (v.log10() - lo.log10()) / (hi.log10() - lo.log10()).max(1e-9));
    let step = PANEL_W / (levels.len().max(2) - 1) as f64;
    let x = |clients: usize| x0 + step * levels.iter().position(|&l| l == clients).unwrap_or(0) as f64;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{title}</text>"#,
        x0 + PANEL_W / 2.0,
        TOP - 15.0
    );
    for t in ticks(lo, hi) {
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            x0 + PANEL_W,
            x0 - 6.0,
            y(t) + 4.0,
            label(t, unit),
            y = y(t)
        );
    }
    for &level in levels {
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle" font-size="11">{level}</text>"##,
            TOP + PLOT_H,
            TOP + PLOT_H + 16.0,
            x = x(level)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">concurrent clients</text>"#,
        x0 + PANEL_W / 2.0,
        TOP + PLOT_H + 34.0
    );
    let mut names: Vec<&str> = points.iter().map(|p| p.target).collect();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line: Vec<String> = points
            .iter()
            .filter(|p| p.target == *name && value(p) > 0.0)
            .map(|p| format!("{:.1},{:.1}", x(p.clients), y(value(p))))
            .collect();
        let _ =
            writeln!(svg, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, line.join(" "));
        for xy in &line {
            let (px, py) = xy.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
    }
}

/// The whole picture: throughput, p50, and a legend.
pub fn svg(points: &[Point], levels: &[usize], caption: &str) -> String {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    panel(&mut svg, LEFT, "throughput (req/s, log)", "", points, levels, |p| p.rate);
    panel(&mut svg, LEFT + PANEL_W + 80.0, "p50 latency (µs, log)", "", points, levels, |p| p.p50_us);
    let mut names: Vec<&str> = points.iter().map(|p| p.target).collect();
    names.dedup();
    let legend_x = LEFT + 2.0 * PANEL_W + 110.0;
    for (i, name) in names.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let y = TOP + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x}" x2="{}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
            legend_x + 20.0,
            legend_x + 26.0,
            y + 4.0
        );
    }
    let _ =
        writeln!(svg, r##"<text x="{LEFT}" y="{}" font-size="11" fill="#555">{}</text>"##, H - 12.0, escape(caption));
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
