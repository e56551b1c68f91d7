//! `Report`: the paper's tables from the metrics of the records of named stages and
//! `ForEach` groups, with training curves and sample grids.
//!
//! ```ron
//! "table1": Report(
//!     title: "Table 1: FID (mean ± sd over 3 seeds)",
//!     tables: [(
//!         title: "FID",
//!         stages: "score",             // score[data=…,backbone=…,method=…,seed=…]
//!         metrics: ["fid"],
//!         rows: ["data", "backbone"],
//!         columns: Some("method"),
//!     )],
//!     curves: ["train"],
//!     grids: ["samples"],
//! ),
//! ```
//!
//! Variables on neither axis (the seed) are aggregated: mean ± sample sd by default,
//! `aggregate: Min` or `Max` for the best run. Outputs: `report.md`, `table-N.csv` (one
//! line per cell), `report.json` (every cell with the stages and values behind it),
//! and `index.html` with the tables, loss (and FID) curves of the `curves` stages
//! (`curves/*.png`) and the sample grids of the `grids` stages (`grids/*.png`).

use std::fmt::Write as _;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::artifacts;
use crate::error::KindError;
use contract::Input;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use report::plot::{self, PALETTE, Series};
use report::table::{Measured, Table, TableSpec};

pub struct Report;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub title: String,
    /// A paragraph under the title (say what the numbers are measured in).
    #[serde(default)]
    pub note: Option<String>,
    pub tables: Vec<TableSpec>,
    /// `Train` stages (or groups) whose loss and FID curves to plot.
    #[serde(default)]
    pub curves: Vec<String>,
    /// `Sample` stages (or groups) whose `preview.png` to show.
    #[serde(default)]
    pub grids: Vec<String>,
}

impl TypedKind for Report {
    const NAME: &'static str = "Report";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if params.tables.is_empty() {
            return Err(Invalid::new(
                "a report needs at least one table",
                &["tables"],
            ));
        }
        let mut stages = Vec::new();
        for (i, table) in params.tables.iter().enumerate() {
            if table.metrics.is_empty() {
                return Err(Invalid::new(
                    "name at least one metric",
                    &["tables", &i.to_string(), "metrics"],
                ));
            }
            stages.push(at(
                format!("table{i}"),
                &table.stages,
                &["tables", &i.to_string(), "stages"],
            ));
        }
        for (field, list) in [("curves", &params.curves), ("grids", &params.grids)] {
            for (i, target) in list.iter().enumerate() {
                stages.push(at(format!("{field}{i}"), target, &[field, &i.to_string()]));
            }
        }
        Ok(Needs {
            stages,
            files: Vec::new(),
            gpus: contract::GpuNeed::None,
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let write = |name: &str, bytes: &[u8]| {
            let path = ctx.out.join(name);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(StageError::io(format!("cannot create {}", dir.display())))?;
            }
            std::fs::write(&path, bytes).map_err(StageError::io(format!("cannot write {name}")))
        };
        let mut tables = Vec::new();
        for (i, spec) in params.tables.iter().enumerate() {
            let measured: Vec<Measured> = inputs(ctx, &format!("table{i}"))
                .iter()
                .map(|input| Measured {
                    stage: &input.from,
                    metrics: &input.metrics,
                })
                .collect();
            let table = Table::build(spec, &measured)?;
            write(&format!("table-{}.csv", i + 1), table.csv().as_bytes())?;
            tables.push(table);
        }

        let mut markdown = format!("# {}\n\n", params.title);
        if let Some(note) = &params.note {
            markdown.push_str(&format!("{note}\n\n"));
        }
        for table in &tables {
            markdown.push_str(&format!("## {}\n\n{}\n", table.title, table.markdown()));
        }
        write("report.md", markdown.as_bytes())?;
        let json =
            serde_json::json!({ "title": params.title, "note": params.note, "tables": tables });
        write("report.json", &serde_json::to_vec_pretty(&json).unwrap())?;

        let mut html = String::new();
        let _ = write!(
            html,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{0}</h1>\n",
            escape(&params.title)
        );
        if let Some(note) = &params.note {
            let _ = writeln!(html, "<p>{}</p>", escape(note));
        }
        for table in &tables {
            html.push_str(&html_table(table));
        }
        let mut figures = 0;
        let curve_inputs: Vec<&Input> = (0..params.curves.len())
            .flat_map(|i| inputs(ctx, &format!("curves{i}")))
            .collect();
        if !curve_inputs.is_empty() {
            html.push_str("<h2>Training curves</h2>\n");
            std::fs::create_dir_all(ctx.out.join("curves"))
                .map_err(StageError::io("cannot create curves/"))?;
        }
        for input in curve_inputs {
            for (what, file, series) in curves(input)? {
                let name = format!("curves/{}-{what}.png", slug(&input.from));
                let drawn: Vec<Series> = series
                    .iter()
                    .zip(PALETTE)
                    .map(|((_, points), color)| Series { points, color })
                    .collect();
                plot::write(&drawn, &ctx.out.join(&name))
                    .map_err(|e| StageError::caused(format!("cannot write {name}"), e))?;
                html.push_str(&figure(&name, &input.from, file, &series, &drawn));
                figures += 1;
            }
        }
        let grid_inputs: Vec<&Input> = (0..params.grids.len())
            .flat_map(|i| inputs(ctx, &format!("grids{i}")))
            .collect();
        if !grid_inputs.is_empty() {
            html.push_str("<h2>Samples</h2>\n<p>One row per class (the first ten).</p>\n");
        }
        for input in grid_inputs {
            let source = input.path.join(artifacts::PREVIEW);
            if !source.exists() {
                return Err(StageError::Invalid(format!(
                    "`{}` has no preview.png: `grids` takes Sample or Dataset stages",
                    input.from
                ))
                .into());
            }
            let name = format!("grids/{}.png", slug(&input.from));
            let bytes = std::fs::read(&source)
                .map_err(StageError::io(format!("cannot read {}", source.display())))?;
            write(&name, &bytes)?;
            let _ = writeln!(
                html,
                "<figure><img class=\"grid\" src=\"{name}\"><figcaption>{}</figcaption></figure>",
                escape(&input.from)
            );
            figures += 1;
        }
        html.push_str("</body></html>\n");
        write("index.html", html.as_bytes())?;

        let cells: usize = tables.iter().map(|t| t.cells.len()).sum();
        let summary = format!(
            "{} table(s), {cells} cells, {figures} figure(s) in index.html",
            tables.len()
        );
        let _ = writeln!(&mut &*ctx.log, "{markdown}");
        Ok(Outcome {
            metrics: Default::default(),
            summary: Some(summary),
        })
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}\
th{background:#f4f4f4}figure{display:inline-block;margin:.5em}img.grid{image-rendering:pixelated;width:22em}\
.key{display:inline-block;width:1em;height:.3em;margin:0 .3em .15em 0}";

fn at(role: String, target: &str, path: &[&str]) -> Reference {
    Reference {
        role,
        target: target.into(),
        at: path.iter().map(|s| s.to_string()).collect(),
    }
}

fn inputs<'a>(ctx: &'a Context, role: &str) -> &'a [Input] {
    ctx.inputs.get(role).map_or(&[], Vec::as_slice)
}

/// A file name from a stage name: `train[model=acgan,seed=0]` → `train-model=acgan-seed=0`.
fn slug(stage: &str) -> String {
    let mut out: String = stage
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html_table(table: &Table) -> String {
    let grid = table.grid();
    let mut html = format!("<h2>{}</h2>\n<table>\n<tr>", escape(&table.title));
    for header in &grid[0] {
        let _ = write!(html, "<th>{}</th>", escape(header));
    }
    html.push_str("</tr>\n");
    for row in &grid[1..] {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

type Curve = (String, Vec<(f64, f64)>);

/// A chart: its file-name suffix, the file it was read from, its curves.
type Chart = (&'static str, &'static str, Vec<Curve>);

/// The curves of a training stage: losses per step from `metrics.jsonl` (smoothed), and
/// FID per evaluation from `fid.jsonl` when the stage evaluated during training.
fn curves(input: &Input) -> Result<Vec<Chart>, StageError> {
    let mut out = Vec::new();
    let read = |file: &str| -> Result<Option<Vec<serde_json::Value>>, StageError> {
        let path = input.path.join(file);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .map_err(StageError::io(format!("cannot read {}", path.display())))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|e| StageError::caused(format!("`{}`", path.display()), e))
    };
    let column = |rows: &[serde_json::Value], key: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| Some((r["step"].as_f64()?, r[key].as_f64()?)))
            .collect()
    };
    match read(artifacts::LOSSES)? {
        Some(rows) => {
            let window = (rows.len() / 50).max(1);
            let losses = ["d_loss", "g_loss"]
                .iter()
                .map(|k| (k.to_string(), plot::smooth(&column(&rows, k), window)))
                .collect();
            out.push(("losses", artifacts::LOSSES, losses));
        }
        None => {
            return Err(StageError::Invalid(format!(
                "`{}` has no metrics.jsonl: `curves` takes Train stages",
                input.from
            )));
        }
    }
    if let Some(rows) = read(artifacts::SCORES)? {
        out.push((
            "fid",
            artifacts::SCORES,
            vec![("fid".to_string(), column(&rows, "fid"))],
        ));
    }
    Ok(out)
}

fn figure(name: &str, stage: &str, file: &str, series: &[Curve], drawn: &[Series]) -> String {
    let mut caption = format!("{} ({file})", escape(stage));
    if let Some(((x0, x1), (y0, y1))) = plot::bounds(drawn) {
        let _ = write!(caption, "<br>step {x0}–{x1}, value {y0:.4}–{y1:.4}<br>");
    }
    for ((label, _), color) in series.iter().zip(PALETTE) {
        let _ = write!(
            caption,
            "<span class=\"key\" style=\"background:rgb({},{},{})\"></span>{} ",
            color[0],
            color[1],
            color[2],
            escape(label)
        );
    }
    format!("<figure><img src=\"{name}\"><figcaption>{caption}</figcaption></figure>\n")
}
