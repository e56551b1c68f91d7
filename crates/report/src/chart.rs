//! Line charts as SVG: axes with ticks and labels, a legend, a band behind a line (the
//! spread over seeds), faint raw values under a smoothed line, and an optional log
//! scale. SVG is text the browser lays out with its own fonts, so the charts stay sharp
//! at any size, diff as text, and go into a paper as they are.

use std::fmt::Write as _;

use super::escape;
use super::series::Band;

/// One chart: a title, axis labels and its lines.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A logarithmic y axis (values ≤ 0 are left out).
    pub log_y: bool,
    pub lines: Vec<Line>,
}

/// One line of a chart, in the legend under its label.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub label: String,
    pub color: [u8; 3],
    /// (x, y) in order of x; a non-finite value breaks the line.
    pub points: Vec<(f64, f64)>,
    /// Drawn as a translucent band behind the line.
    pub band: Band,
    /// Drawn thin and faint behind the line: the raw values of a smoothed line.
    pub faint: Vec<(f64, f64)>,
}

/// Colours of successive lines, distinguishable on white (matplotlib's first six).
pub const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
    [255, 127, 14],
    [23, 190, 207],
];

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;
const LEFT: f64 = 68.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 48.0;
const FONT: f64 = 12.0;

/// An axis: the range it spans (in log10 units on a log axis) and where its ticks go.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    /// (position in axis units, label).
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis over `lo..=hi`, widened to whole ticks, about `target` of them.
    pub fn linear(lo: f64, hi: f64, target: usize) -> Axis {
        Axis::linear_at_least(lo, hi, target, 0.0)
    }

    /// A linear axis whose ticks are at least `min_step` apart (1 for whole numbers
    /// such as steps, so that no tick reads 2.5).
    pub fn linear_at_least(lo: f64, hi: f64, target: usize, min_step: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, hi + 1.0)
        };
        let step = nice_step(hi - lo, target).max(min_step);
        let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
        Axis::ticked(first as f64 * step, last as f64 * step, step)
    }

    /// A linear axis over exactly `lo..=hi` (the data's own span, as steps from the
    /// first to the last), ticks at round values inside it.
    pub fn exact(lo: f64, hi: f64, target: usize, min_step: f64) -> Axis {
        if hi <= lo {
            return Axis::linear_at_least(lo, hi, target, min_step);
        }
        let step = nice_step(hi - lo, target).max(min_step);
        let mut axis = Axis::ticked(lo, hi, step);
        axis.ticks
            .retain(|(v, _)| *v >= lo - 1e-9 * step && *v <= hi + 1e-9 * step);
        axis
    }

    /// An axis over `lo..=hi` with ticks at the multiples of `step` that cover it.
    fn ticked(lo: f64, hi: f64, step: f64) -> Axis {
        let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
        let ticks = (first..=last)
            .map(|k| {
                let v = k as f64 * step;
                (v, tick_label(v, step))
            })
            .collect();
        Axis {
            lo,
            hi,
            log: false,
            ticks,
        }
    }

    /// A log10 axis over `lo..=hi` (both > 0), widened to whole decades; ticks at each
    /// decade, and at 2 and 5 times it when the axis spans few decades.
    pub fn log(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo / 2.0, hi * 2.0)
        };
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let last = last.max(first + 1);
        let multiples: &[f64] = if last - first <= 2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut ticks = Vec::new();
        for decade in first..=last {
            for &m in multiples {
                let v = m * 10f64.powi(decade);
                if decade < last || m == 1.0 {
                    ticks.push((v.log10(), tick_label(v, 10f64.powi(decade))));
                }
            }
        }
        Axis {
            lo: first as f64,
            hi: last as f64,
            log: true,
            ticks,
        }
    }

    /// A value in axis units: its log10 on a log axis (`None` for values ≤ 0 there).
    fn unit(&self, v: f64) -> Option<f64> {
        match self.log {
            true if v > 0.0 => Some(v.log10()),
            true => None,
            false => Some(v),
        }
    }

    /// Where `v` lies from 0 (lo) to 1 (hi).
    fn fraction(&self, v: f64) -> Option<f64> {
        let u = self.unit(v)?;
        u.is_finite().then(|| (u - self.lo) / (self.hi - self.lo))
    }
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into about `target` parts.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n < 1.5 => 1.0,
        n if n < 3.0 => 2.0,
        n if n < 7.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// A tick's label with as many decimals as `step` needs; thousands as `k` (`20k` steps).
fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 10_000.0 && step >= 1000.0 {
        let k = v / 1000.0;
        return format!("{}k", tick_label(k, step / 1000.0));
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn rgb(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

impl Chart {
    /// The axes the chart's values span, `None` when it has no value to draw.
    pub fn axes(&self) -> Option<(Axis, Axis)> {
        let log_y = self.log_y;
        let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
        let points: Vec<(f64, f64)> = self
            .lines
            .iter()
            .flat_map(|l| {
                let band = l.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
                l.points
                    .iter()
                    .copied()
                    .chain(l.faint.iter().copied())
                    .chain(band)
            })
            .filter(usable)
            .collect();
        let first = points.first()?;
        let (mut x, mut y) = ((first.0, first.0), (first.1, first.1));
        for &(px, py) in &points {
            x = (x.0.min(px), x.1.max(px));
            y = (y.0.min(py), y.1.max(py));
        }
        let y_axis = if log_y {
            Axis::log(y.0, y.1)
        } else {
            Axis::linear(y.0, y.1, 5)
        };
        let whole = points.iter().all(|p| p.0.fract() == 0.0);
        let x_axis = Axis::exact(x.0, x.1, 6, if whole { 1.0 } else { 0.0 });
        Some((x_axis, y_axis))
    }

    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        let (w, h) = (WIDTH as f64, HEIGHT as f64);
        let (x0, x1, y0, y1) = (LEFT, w - RIGHT, TOP, h - BOTTOM);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"{FONT}\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            (x0 + x1) / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            h - 10.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            svg,
            "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (y0 + y1) / 2.0,
            escape(&self.y_label)
        );
        let Some((xa, ya)) = self.axes() else {
            let _ = writeln!(
                svg,
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no values</text>\n</svg>",
                x1 - x0,
                y1 - y0,
                (x0 + x1) / 2.0,
                (y0 + y1) / 2.0
            );
            return svg;
        };
        let px = |x: f64| xa.fraction(x).map(|f| x0 + f * (x1 - x0));
        let py = |y: f64| ya.fraction(y).map(|f| y1 - f * (y1 - y0));

        // Grid lines and ticks.
        for (u, label) in &xa.ticks {
            let x = x0 + (u - xa.lo) / (xa.hi - xa.lo) * (x1 - x0);
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{y0}\" x2=\"{x:.1}\" y2=\"{y1}\" stroke=\"#eee\"/>\
                 <line x1=\"{x:.1}\" y1=\"{y1}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#444\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y1 + 5.0,
                y1 + 18.0,
                escape(label)
            );
        }
        for (u, label) in &ya.ticks {
            let y = y1 - (u - ya.lo) / (ya.hi - ya.lo) * (y1 - y0);
            let _ = writeln!(
                svg,
                "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
                 <line x1=\"{}\" y1=\"{y:.1}\" x2=\"{x0}\" y2=\"{y:.1}\" stroke=\"#444\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 5.0,
                x0 - 8.0,
                y + 4.0,
                escape(label)
            );
        }
        let _ = writeln!(
            svg,
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>",
            x1 - x0,
            y1 - y0
        );

        // Bands first, then faint values, then the lines over both.
        let path = |points: &[(f64, f64)]| -> String {
            let mut d = String::new();
            let mut pen_down = false;
            for &(x, y) in points {
                match (px(x), py(y)) {
                    (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                        let _ = write!(d, "{}{x:.1} {y:.1}", if pen_down { " L" } else { " M" });
                        pen_down = true;
                    }
                    _ => pen_down = false,
                }
            }
            d
        };
        for line in &self.lines {
            let corners: Vec<(f64, f64)> = line
                .band
                .iter()
                .filter_map(|&(x, lo, hi)| Some((px(x)?, py(lo)?, py(hi)?)))
                .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
                .flat_map(|(x, lo, hi)| [(x, hi), (x, lo)])
                .collect();
            if corners.len() >= 4 {
                let upper = corners.iter().step_by(2);
                let lower = corners.iter().skip(1).step_by(2).rev();
                let points: Vec<String> = upper
                    .chain(lower)
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    svg,
                    "<polygon class=\"band\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>",
                    points.join(" "),
                    rgb(line.color)
                );
            }
        }
        for line in &self.lines {
            if !line.faint.is_empty() {
                let _ = writeln!(
                    svg,
                    "<path class=\"faint\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"0.25\" stroke-width=\"1\"/>",
                    path(&line.faint).trim(),
                    rgb(line.color)
                );
            }
        }
        for line in &self.lines {
            let _ = writeln!(
                svg,
                "<path class=\"line\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
                path(&line.points).trim(),
                rgb(line.color)
            );
        }
        self.legend(&mut svg, x1);
        svg.push_str("</svg>\n");
        svg
    }

    /// The legend in the plot's top right corner, on white so lines under it don't
    /// cross the labels.
    fn legend(&self, svg: &mut String, right: f64) {
        let labelled: Vec<&Line> = self.lines.iter().filter(|l| !l.label.is_empty()).collect();
        if labelled.is_empty() {
            return;
        }
        // Sans-serif at 12 px averages about 0.6 em a character.
        let chars = labelled
            .iter()
            .map(|l| l.label.chars().count())
            .max()
            .unwrap_or(0);
        let width = 34.0 + chars as f64 * FONT * 0.6;
        let (x, y) = (right - width - 6.0, TOP + 6.0);
        let _ = writeln!(
            svg,
            "<g class=\"legend\"><rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{}\" \
             fill=\"white\" fill-opacity=\"0.9\" stroke=\"#ccc\"/>",
            8.0 + 16.0 * labelled.len() as f64
        );
        for (i, line) in labelled.iter().enumerate() {
            let row = y + 12.0 + 16.0 * i as f64;
            let _ = writeln!(
                svg,
                "<line x1=\"{:.1}\" y1=\"{row}\" x2=\"{:.1}\" y2=\"{row}\" stroke=\"{}\" stroke-width=\"2\"/>\
                 <text x=\"{:.1}\" y=\"{}\">{}</text>",
                x + 6.0,
                x + 24.0,
                rgb(line.color),
                x + 28.0,
                row + 4.0,
                escape(&line.label)
            );
        }
        svg.push_str("</g>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis) -> Vec<&str> {
        axis.ticks.iter().map(|(_, l)| l.as_str()).collect()
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        let axis = Axis::linear(0.0, 100_000.0, 6);
        assert_eq!(labels(&axis), ["0", "20k", "40k", "60k", "80k", "100k"]);
        let axis = Axis::linear(0.0, 0.93, 5);
        assert_eq!((axis.lo, axis.hi), (0.0, 1.0));
        assert_eq!(labels(&axis), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let axis = Axis::linear(-3.2, 7.9, 5);
        assert_eq!(labels(&axis), ["-4", "-2", "0", "2", "4", "6", "8"]);
        let steps = Axis::linear_at_least(1.0, 4.0, 6, 1.0);
        assert_eq!(labels(&steps), ["1", "2", "3", "4"]);
        // Steps 200 to 1,500: the axis ends where the data does.
        let steps = Axis::exact(200.0, 1500.0, 6, 1.0);
        assert_eq!((steps.lo, steps.hi), (200.0, 1500.0));
        assert_eq!(
            labels(&steps),
            ["200", "400", "600", "800", "1000", "1200", "1400"]
        );
        // One value: a range around it.
        let axis = Axis::linear(5.0, 5.0, 5);
        assert!(axis.lo < 5.0 && axis.hi > 5.0);
    }

    #[test]
    fn log_ticks_at_decades_and_their_multiples() {
        let axis = Axis::log(23.0, 180.0);
        assert_eq!((axis.lo, axis.hi), (1.0, 3.0));
        assert_eq!(
            labels(&axis),
            ["10", "20", "50", "100", "200", "500", "1000"]
        );
        let wide = Axis::log(0.01, 5000.0);
        assert_eq!(
            labels(&wide),
            ["0.01", "0.1", "1", "10", "100", "1000", "10k"]
        );
    }

    fn line(label: &str, points: &[(f64, f64)]) -> Line {
        Line {
            label: label.into(),
            color: PALETTE[0],
            points: points.to_vec(),
            ..Line::default()
        }
    }

    #[test]
    fn the_svg_has_axes_a_legend_and_one_path_per_line() {
        let chart = Chart {
            title: "FID <over> steps".into(),
            x_label: "step".into(),
            y_label: "FID".into(),
            log_y: false,
            lines: vec![
                Line {
                    band: vec![(0.0, 90.0, 110.0), (1000.0, 40.0, 60.0)],
                    ..line("contra", &[(0.0, 100.0), (1000.0, 50.0)])
                },
                line("ac", &[(0.0, 120.0), (500.0, f64::NAN), (1000.0, 70.0)]),
            ],
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("FID &lt;over&gt; steps"));
        assert_eq!(svg.matches("class=\"line\"").count(), 2);
        assert_eq!(svg.matches("class=\"band\"").count(), 1);
        assert!(svg.contains(">contra</text>") && svg.contains(">ac</text>"));
        for tick in [">0</text>", ">1000</text>", ">40</text>", ">120</text>"] {
            assert!(svg.contains(tick), "{tick} in\n{svg}");
        }
        // The NaN breaks the second line into two pieces.
        let ac = svg
            .lines()
            .filter(|l| l.contains("class=\"line\""))
            .nth(1)
            .unwrap();
        assert_eq!(ac.matches('M').count(), 2, "{ac}");
    }

    #[test]
    fn a_log_chart_leaves_out_values_it_cannot_place() {
        let chart = Chart {
            log_y: true,
            lines: vec![line("", &[(0.0, 0.0), (1.0, 10.0), (2.0, 100.0)])],
            ..Chart::default()
        };
        let (_, y) = chart.axes().unwrap();
        assert_eq!((y.lo, y.hi), (1.0, 2.0));
        let svg = chart.svg();
        let path = svg.lines().find(|l| l.contains("class=\"line\"")).unwrap();
        assert_eq!(path.matches(['M', 'L']).count(), 2, "{path}");
        assert!(!svg.contains("class=\"legend\""));
    }

    #[test]
    fn a_chart_without_values_says_so() {
        let chart = Chart {
            lines: vec![line("x", &[(0.0, f64::NAN)])],
            ..Chart::default()
        };
        assert!(chart.axes().is_none());
        assert!(chart.svg().contains("no values"));
    }
}
