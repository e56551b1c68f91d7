//! A sample grid as an SVG figure: the grid's PNG, embedded, scaled up without
//! smoothing, with each row's class name beside it.

use base64::Engine as _;

use super::escape;

/// One labelled row of the grid: where it lies in the PNG (top and height, in pixels).
pub struct Row {
    pub top: usize,
    pub height: usize,
    pub label: String,
}

/// The grid's PNG bytes, its size in pixels (width, height), and its rows.
pub struct Grid<'a> {
    pub png: &'a [u8],
    pub size: (usize, usize),
    pub rows: Vec<Row>,
}

/// Room for the labels left of the images.
const LABELS: f64 = 120.0;
const FONT: f64 = 12.0;

impl Grid<'_> {
    /// The scale that draws the grid about 360 pixels wide: small images become
    /// readable, whole pixels stay sharp.
    fn scale(&self) -> f64 {
        (360 / self.size.0.max(1)).max(1) as f64
    }

    pub fn svg(&self) -> String {
        let scale = self.scale();
        let (w, h) = (self.size.0 as f64 * scale, self.size.1 as f64 * scale);
        let png = base64::engine::general_purpose::STANDARD.encode(self.png);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{h}\" viewBox=\"0 0 {0} {h}\" \
             font-family=\"sans-serif\" font-size=\"{FONT}\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <image x=\"{LABELS}\" y=\"0\" width=\"{w}\" height=\"{h}\" style=\"image-rendering:pixelated\" \
             href=\"data:image/png;base64,{png}\"/>\n",
            LABELS + w
        );
        for row in &self.rows {
            let middle = (row.top as f64 + row.height as f64 / 2.0) * scale;
            svg.push_str(&format!(
                "<text class=\"label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                LABELS - 8.0,
                middle + FONT / 3.0,
                fit(&row.label)
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// A class name as it fits the label column, escaped.
fn fit(label: &str) -> String {
    let max = (LABELS / (FONT * 0.6)) as usize - 2;
    let short: String = if label.chars().count() > max {
        label.chars().take(max - 1).chain(['…']).collect()
    } else {
        label.to_string()
    };
    escape(&short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_is_labelled_at_its_middle() {
        let grid = Grid {
            png: b"not really a png",
            size: (180, 38),
            rows: vec![
                Row {
                    top: 2,
                    height: 16,
                    label: "circle".into(),
                },
                Row {
                    top: 20,
                    height: 16,
                    label: "a <very> long class name indeed".into(),
                },
            ],
        };
        let svg = grid.svg();
        // 180 px wide: drawn twice as large.
        assert!(svg.contains("width=\"360\" height=\"76\""), "{svg}");
        assert!(
            svg.contains("y=\"24.0\" text-anchor=\"end\">circle</text>"),
            "{svg}"
        );
        assert!(svg.contains(">a &lt;very&gt; long…</text>"), "{svg}");
        assert!(svg.contains("href=\"data:image/png;base64,bm90IHJlYWxseSBhIHBuZw==\""));
    }
}
