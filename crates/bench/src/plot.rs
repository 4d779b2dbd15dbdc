//! SVG charts: a sweep (output throughput on the left, latency percentiles on the right, one
//! point per load level, equally spaced) and the soak test's curves against time.

use std::fmt::Write;

use crate::soak::Sample;
use crate::stats::BenchReport;

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const MARGIN: f64 = 60.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

/// One line of a panel.
struct Series<'a> {
    name: &'a str,
    values: Vec<f64>,
}

/// The chart for reports taken at the load levels `levels`, named `x_title` (e.g. concurrency).
pub fn sweep_svg(title: &str, x_title: &str, levels: &[String], reports: &[BenchReport]) -> String {
    let width = 2.0 * (PANEL_W + 2.0 * MARGIN);
    let height = PANEL_H + 2.0 * MARGIN + 30.0;
    let mut svg = String::new();
    let _ = writeln!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#);
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#, width / 2.0, escape(title));
    let throughput = [Series { name: "output tokens/s", values: reports.iter().map(|r| r.output_throughput).collect() }];
    let latency = [
        Series { name: "TTFT p50", values: reports.iter().map(|r| r.ttft_ms.median).collect() },
        Series { name: "TTFT p99", values: reports.iter().map(|r| r.ttft_ms.p99).collect() },
        Series { name: "TPOT p50", values: reports.iter().map(|r| r.tpot_ms.median).collect() },
        Series { name: "ITL p99", values: reports.iter().map(|r| r.itl_ms.p99).collect() },
    ];
    let axes = Axes { x_title, levels, label_every: 1 };
    panel(&mut svg, (MARGIN, MARGIN + 10.0), "Throughput (tokens/s)", &axes, &throughput);
    panel(&mut svg, (PANEL_W + 3.0 * MARGIN, MARGIN + 10.0), "Latency (ms)", &axes, &latency);
    svg.push_str("</svg>\n");
    svg
}

/// The x axis shared by the panels: one point per level, every `label_every`-th labelled.
struct Axes<'a> {
    x_title: &'a str,
    levels: &'a [String],
    label_every: usize,
}

/// Points are marked with dots up to this many per line.
const MAX_DOTTED_POINTS: usize = 40;

fn panel(svg: &mut String, (left, top): (f64, f64), y_title: &str, axes: &Axes, series: &[Series]) {
    let levels = axes.levels;
    let bottom = top + PANEL_H;
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max).max(1e-9) * 1.1;
    let x_at = |i: usize| left + PANEL_W * (i as f64 + 0.5) / levels.len().max(1) as f64;
    let y_at = |v: f64| bottom - PANEL_H * v / max;
    let _ = writeln!(svg, r##"<rect x="{left}" y="{top}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>"##);
    for tick in 0..=5 {
        let value = max * tick as f64 / 5.0;
        let y = y_at(value);
        let _ = writeln!(svg, r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##, left + PANEL_W, left - 6.0, y + 4.0, short(value));
    }
    for (i, level) in levels.iter().enumerate().step_by(axes.label_every.max(1)) {
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x_at(i), bottom + 18.0, escape(level));
    }
    let _ = writeln!(svg, r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, left + PANEL_W / 2.0, bottom + 38.0, escape(axes.x_title));
    let _ = writeln!(svg, r#"<text x="{left}" y="{}">{}</text>"#, top - 8.0, escape(y_title));
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = s.values.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", x_at(i), y_at(v))).collect();
        let _ = writeln!(svg, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, points.join(" "));
        for p in points.iter().filter(|_| points.len() <= MAX_DOTTED_POINTS) {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
        let ly = top + 16.0 + 16.0 * k as f64;
        let _ = writeln!(svg, r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#, left + 10.0, ly - 9.0, left + 25.0, ly, escape(s.name));
    }
}

/// The soak test's curves against time: server memory, open files, KV cache use and running
/// requests, and short-request latency, one panel each in a 2 x 2 grid.
pub fn soak_svg(title: &str, samples: &[Sample]) -> String {
    let width = 2.0 * (PANEL_W + 2.0 * MARGIN);
    let height = 2.0 * (PANEL_H + 2.0 * MARGIN) + 30.0;
    let mut svg = String::new();
    let _ = writeln!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#);
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#, width / 2.0, escape(title));
    let levels: Vec<String> = samples.iter().map(|s| format!("{:.0}", s.at_s / 60.0)).collect();
    let axes = Axes { x_title: "minutes", levels: &levels, label_every: samples.len().div_ceil(8) };
    let line = |name, value: fn(&Sample) -> Option<f64>| Series { name, values: samples.iter().map(|s| value(s).unwrap_or(0.0)).collect() };
    let (right, lower) = (PANEL_W + 3.0 * MARGIN, PANEL_H + 3.0 * MARGIN + 10.0);
    panel(&mut svg, (MARGIN, MARGIN + 10.0), "Server RSS (MiB)", &axes, &[line("RSS", |s| s.rss_mib)]);
    panel(&mut svg, (right, MARGIN + 10.0), "Server open files", &axes, &[line("open files", |s| s.open_files)]);
    let kv = [line("KV cache in use (%)", |s| s.kv_usage.map(|v| v * 100.0)), line("running requests", |s| s.running)];
    panel(&mut svg, (MARGIN, lower), "KV cache and batch", &axes, &kv);
    panel(&mut svg, (right, lower), "Short-request latency p50 (ms)", &axes, &[line("p50", |s| s.latency_p50_ms)]);
    svg.push_str("</svg>\n");
    svg
}

fn short(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_point_per_level_and_series() {
        let report = |tput: f64| BenchReport { output_throughput: tput, ..Default::default() };
        let svg = sweep_svg("a <b>", "concurrency", &["1".into(), "4".into(), "16".into()], &[report(10.0), report(30.0), report(50.0)]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3 + 4 * 3);
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(svg.contains("a &lt;b&gt;"));
        assert!(svg.contains(">16</text>"));
        assert!(svg.contains(">concurrency</text>"));
    }

    #[test]
    fn the_soak_chart_has_four_panels_and_sparse_labels() {
        let samples: Vec<Sample> = (0..720)
            .map(|i| Sample { at_s: i as f64 * 5.0, rss_mib: Some(300.0), open_files: Some(40.0), kv_usage: Some(0.1), running: Some(3.0), latency_p50_ms: Some(80.0), requests: i })
            .collect();
        let svg = soak_svg("soak", &samples);
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert_eq!(svg.matches("<circle").count(), 0, "no dots on long curves");
        assert!(svg.matches(">minutes</text>").count() == 4);
        assert!(svg.matches("text-anchor=\"middle\">").count() < 60, "labels thinned out");
    }
}
