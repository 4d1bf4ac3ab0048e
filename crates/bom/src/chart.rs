//! The training-curve chart: a small SVG line-chart renderer.
//!
//! Where it sits: [`crate::build_bom`] draws one panel per compiled metric
//! (loss first), each with the train series and, where the job validated,
//! the validation series, and embeds the SVG base64-encoded in the model
//! card's `quantitativeAnalysis.graphics`. `veritrain bom show --html`
//! inlines the same SVG.
//!
//! The output is a pure function of the data: coordinates are written with a
//! fixed number of decimals, and the tick arithmetic uses only IEEE basic
//! operations (no `log10`/`powf`, whose last bit may differ between libm
//! builds), so the same history gives the same bytes everywhere and the BOM
//! snapshots hold. Non-finite values (a `NaN` loss) break the line instead
//! of being drawn.

use std::fmt::Write as _;

/// One line of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text (`train`, `validation`).
    pub label: String,
    /// `(epoch, value)` points in epoch order.
    pub points: Vec<(u32, f64)>,
}

/// One chart: a metric over the epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Title (the metric's name).
    pub title: String,
    /// Its lines; the first is drawn solid, the others dashed.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 720.0;
const PANEL_HEIGHT: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
/// Upper bound on the ticks of one axis (the arithmetic gives about 5).
const MAX_TICKS: u32 = 20;
/// Values are clamped to this magnitude before plotting, so a diverged run
/// (a loss of 1e300) still gives a finite scale with a handful of ticks.
const CLAMP: f64 = 1e15;

fn clamp(v: f64) -> f64 {
    v.clamp(-CLAMP, CLAMP)
}

/// Escape text for XML content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even as references.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The smallest "nice" step (1, 2 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mut p = 1.0_f64;
    while p > raw {
        p /= 10.0;
    }
    while p * 10.0 <= raw {
        p *= 10.0;
    }
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| p * m)
        .find(|&s| s >= raw)
        .unwrap_or(p * 10.0);
    // A subnormal range can round the step to zero.
    if step > 0.0 && step.is_finite() {
        step
    } else {
        1.0
    }
}

/// Decimals needed to print multiples of `step` exactly enough.
fn decimals(step: f64) -> usize {
    let mut d = 0;
    let mut s = step;
    while s < 1.0 && d < 12 {
        s *= 10.0;
        d += 1;
    }
    // A step of 0.25 (never produced) or 2.5 would need one more.
    if (s - s.round()).abs() > 1e-9 && d < 12 {
        d += 1;
    }
    d
}

/// Axis ticks covering `[lo, hi]` with about `target` intervals.
fn ticks(lo: f64, hi: f64, target: f64) -> (f64, f64, f64) {
    let step = nice_step((hi - lo) / target);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    (start, end, step)
}

/// Render the panels as one SVG document.
pub fn render_svg(title: &str, panels: &[Panel]) -> String {
    let count = panels.len().max(1);
    let height = PANEL_HEIGHT * count as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\" \
         font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">\n\
         <title>{t}</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
        w = WIDTH,
        h = height,
        t = xml_escape(title),
    );
    if panels.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no per-epoch history was recorded</text>",
            WIDTH / 2.0,
            PANEL_HEIGHT / 2.0
        );
    }
    for (i, panel) in panels.iter().enumerate() {
        render_panel(&mut svg, panel, PANEL_HEIGHT * i as f64);
    }
    svg.push_str("</svg>\n");
    svg
}

fn render_panel(svg: &mut String, panel: &Panel, y0: f64) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = PANEL_HEIGHT - TOP - BOTTOM;
    let (left, top) = (LEFT, y0 + TOP);
    let bottom = top + plot_h;

    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let epochs: Vec<u32> = points().map(|&(e, _)| e).collect();
    let values: Vec<f64> = points()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .map(clamp)
        .collect();

    let _ = writeln!(
        svg,
        "<g class=\"panel\">\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        left,
        y0 + 20.0,
        xml_escape(&panel.title)
    );

    // X axis: epochs, integer ticks.
    let (emin, emax) = match (epochs.iter().min(), epochs.iter().max()) {
        (Some(&a), Some(&b)) => (f64::from(a), f64::from(b)),
        _ => (1.0, 1.0),
    };
    let (emin, emax) = if emax > emin {
        (emin, emax)
    } else {
        (emin - 1.0, emax + 1.0)
    };
    let xstep = nice_step((emax - emin) / 8.0).max(1.0);
    let x_of = |e: f64| left + (e - emin) / (emax - emin) * plot_w;

    // Y axis: padded nice range over the finite values.
    let (vmin, vmax) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (vmin, vmax) = if !vmin.is_finite() {
        (0.0, 1.0)
    } else if vmax > vmin {
        (vmin, vmax)
    } else {
        let pad = if vmin == 0.0 { 1.0 } else { vmin.abs() / 10.0 };
        (vmin - pad, vmax + pad)
    };
    let (ylo, yhi, ystep) = ticks(vmin, vmax, 4.0);
    let y_of = |v: f64| bottom - (clamp(v) - ylo) / (yhi - ylo) * plot_h;
    let ydec = decimals(ystep);

    // Grid and Y tick labels.
    for k in 0..=MAX_TICKS {
        let v = ylo + f64::from(k) * ystep;
        if v > yhi + ystep / 2.0 {
            break;
        }
        let y = y_of(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.*}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            ydec,
            v
        );
    }
    // X ticks.
    let mut e = (emin / xstep).ceil() * xstep;
    while e <= emax + 1e-9 {
        let x = x_of(e);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333333\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 16.0,
            e as i64
        );
        e += xstep;
    }
    // Axes and their titles.
    let _ = writeln!(
        svg,
        "<line x1=\"{left:.1}\" y1=\"{top:.1}\" x2=\"{left:.1}\" y2=\"{bottom:.1}\" stroke=\"#333333\"/>\n\
         <line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#333333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">epoch</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1} {:.1})\">{}</text>",
        left + plot_w,
        left + plot_w / 2.0,
        bottom + 32.0,
        left - 52.0,
        top + plot_h / 2.0,
        left - 52.0,
        top + plot_h / 2.0,
        xml_escape(&panel.title)
    );

    // Lines, split at non-finite values, and their points.
    for (si, series) in panel.series.iter().enumerate() {
        let color = COLORS.get(si % COLORS.len()).copied().unwrap_or("#000000");
        let dash = if si == 0 {
            ""
        } else {
            " stroke-dasharray=\"6 3\""
        };
        let mut segment: Vec<String> = Vec::new();
        let flush = |segment: &mut Vec<String>, svg: &mut String| {
            if segment.len() > 1 {
                let _ = writeln!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                    segment.join(" ")
                );
            }
            segment.clear();
        };
        for &(epoch, value) in &series.points {
            if !value.is_finite() {
                flush(&mut segment, svg);
                continue;
            }
            segment.push(format!("{:.1},{:.1}", x_of(f64::from(epoch)), y_of(value)));
        }
        flush(&mut segment, svg);
        for &(epoch, value) in series.points.iter().filter(|(_, v)| v.is_finite()) {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>",
                x_of(f64::from(epoch)),
                y_of(value)
            );
        }
        // Legend entry.
        let ly = top + 8.0 + 18.0 * si as f64;
        let lx = left + plot_w + 14.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            xml_escape(&series.label)
        );
    }
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(train: &[(u32, f64)], val: &[(u32, f64)]) -> Panel {
        Panel {
            title: "loss".into(),
            series: vec![
                Series {
                    label: "train".into(),
                    points: train.to_vec(),
                },
                Series {
                    label: "validation".into(),
                    points: val.to_vec(),
                },
            ],
        }
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.23), 0.5);
        assert_eq!(nice_step(0.2), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(120.0), 200.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(decimals(0.05), 2);
        assert_eq!(decimals(5.0), 0);
        assert_eq!(decimals(0.2), 1);
    }

    #[test]
    fn chart_has_axes_lines_and_legend() {
        let svg = render_svg(
            "Training curves",
            &[panel(
                &[(1, 1.0), (2, 0.5), (3, 0.25)],
                &[(1, 1.1), (2, 0.7), (3, 0.6)],
            )],
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains(">epoch</text>"));
        assert!(svg.contains(">validation</text>"));
        assert!(svg.contains("stroke-dasharray"));
        // Y ticks cover 0.25..1.1: a range of 0.85 over about 4 intervals
        // is a 0.5 step, from 0.0 to 1.5.
        for t in ["0.0", "0.5", "1.0", "1.5"] {
            assert!(svg.contains(&format!(">{t}</text>")), "{t}: {svg}");
        }
        assert!(!svg.contains(">2.0</text>"));
        // X ticks are the epochs.
        for e in 1..=3 {
            assert!(svg.contains(&format!(">{e}</text>")));
        }
    }

    #[test]
    fn same_input_same_bytes() {
        let p = [panel(&[(1, 0.123456789), (2, 0.1)], &[])];
        assert_eq!(render_svg("t", &p), render_svg("t", &p));
    }

    #[test]
    fn non_finite_values_break_the_line() {
        let svg = render_svg(
            "t",
            &[panel(
                &[(1, 1.0), (2, 0.9), (3, f64::NAN), (4, 0.7), (5, 0.6)],
                &[],
            )],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn degenerate_inputs_render() {
        // One epoch, constant values, no values at all, no panels.
        for p in [
            vec![panel(&[(1, 0.5)], &[(1, 0.5)])],
            vec![panel(&[(1, 0.0), (2, 0.0)], &[])],
            vec![panel(&[], &[])],
            vec![panel(&[(1, f64::INFINITY)], &[])],
            vec![panel(&[(1, -1e300), (2, 1e300)], &[(1, f64::MAX)])],
            vec![panel(&[(1, 1e-300), (2, 2e-300)], &[])],
            vec![panel(&[(1, 0.0), (2, 5e-324)], &[])],
            vec![],
        ] {
            let svg = render_svg("t", &p);
            assert!(svg.ends_with("</svg>\n"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn text_is_escaped() {
        let mut p = panel(&[(1, 1.0)], &[]);
        p.title = "<script>alert(1)</script>".into();
        let svg = render_svg("a & b", &[p]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a &amp; b"));
    }
}
