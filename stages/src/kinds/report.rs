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
//!     charts: (legend: Some("method"), mean_over: Some("seed"), log_fid: true),
//!     grids: ["samples"],
//! ),
//! ```
//!
//! Variables on neither axis (the seed) are aggregated: mean ± sample sd by default,
//! `aggregate: Min` or `Max` for the best run. Outputs: `report.md`, `table-N.csv` (one
//! line per cell), `report.json` (every cell with the stages and values behind it),
//! and `index.html` with the tables, the charts of the `curves` stages (`curves/*.svg`:
//! FID against steps, D and G losses smoothed over the raw values) and the sample grids
//! of the `grids` stages (`grids/*.svg`, one labelled row per class). The charts put
//! the runs of one setting in one panel, a line per legend value: the mean over
//! `mean_over` with a band of ± sd.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::artifacts;
use crate::error::KindError;
use contract::Input;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use report::chart::{Chart, Line, PALETTE};
use report::escape;
use report::grid::{Grid, Row};
use report::panel::{Panel, panels};
use report::series::{mean_over, smooth, thin};
use report::table::{Measured, Table, TableSpec};

pub struct Report;

/// Tables of other stages' metrics over their `ForEach` variables, charts of trainings'
/// losses and FID, and sample grids: `report.md`, `table-N.csv`, `report.json` and
/// `index.html`, the charts and grids as SVG files beside it.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The report's heading.
    pub title: String,
    /// A paragraph under the title (say what the numbers are measured in).
    #[serde(default)]
    pub note: Option<String>,
    /// The tables, in order.
    pub tables: Vec<TableSpec>,
    /// `Train` stages (or groups) whose loss and FID curves to plot.
    #[serde(default)]
    pub curves: Vec<String>,
    /// How the `curves` are laid out into charts.
    #[serde(default)]
    pub charts: Charts,
    /// `Sample` or `Dataset` stages (or groups) whose preview grids to show.
    #[serde(default)]
    pub grids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields, default)]
pub struct Charts {
    /// The `ForEach` variable whose values are a chart's lines; by default the last
    /// variable of each stage name that is not `mean_over`.
    pub legend: Option<String>,
    /// The variable a line averages over (mean, and a band of ± sd); `None` draws
    /// every run as its own line.
    pub mean_over: Option<String>,
    /// FID on a logarithmic axis.
    pub log_fid: bool,
}

impl Default for Charts {
    fn default() -> Charts {
        Charts {
            legend: None,
            mean_over: Some("seed".into()),
            log_fid: false,
        }
    }
}

impl TypedKind for Report {
    const NAME: &'static str = "Report";
    const VERSION: u32 = 2;
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
                    protocol: &input.protocol,
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
        let by_name: BTreeMap<&str, &Input> =
            curve_inputs.iter().map(|i| (i.from.as_str(), *i)).collect();
        // In the order the pipeline gives them: the panels' and legends' order.
        let names: Vec<&str> = curve_inputs.iter().map(|i| i.from.as_str()).collect();
        let opts = &params.charts;
        let grouped = panels(&names, opts.legend.as_deref(), opts.mean_over.as_deref())?;
        for panel in &grouped {
            let logs = panel
                .lines
                .iter()
                .map(|(_, runs)| {
                    runs.iter()
                        .map(|run| TrainingLog::read(by_name[run]))
                        .collect()
                })
                .collect::<Result<Vec<Vec<_>>, _>>()?;
            let html_before = html.len();
            for (what, chart) in charts(panel, &logs, opts) {
                let name = format!("curves/{}-{what}.svg", slug(&panel.name));
                write(&name, chart.svg().as_bytes())?;
                let _ = writeln!(
                    html,
                    "<figure><img src=\"{name}\" width=\"{}\" height=\"{}\" alt=\"{}\"></figure>",
                    report::chart::WIDTH,
                    report::chart::HEIGHT,
                    escape(&chart.title)
                );
                figures += 1;
            }
            if html.len() > html_before {
                let _ = writeln!(html, "<p class=\"caption\">{}</p>", caption(panel, opts));
            }
        }
        let grid_inputs: Vec<&Input> = (0..params.grids.len())
            .flat_map(|i| inputs(ctx, &format!("grids{i}")))
            .collect();
        if !grid_inputs.is_empty() {
            html.push_str("<h2>Samples</h2>\n<p>One row per class (the first ten), the first ten images of each.</p>\n");
        }
        for input in grid_inputs {
            let name = format!("grids/{}.svg", slug(&input.from));
            write(&name, grid(input)?.as_bytes())?;
            let _ = writeln!(
                html,
                "<figure><img class=\"grid\" src=\"{name}\" alt=\"samples of {0}\"><figcaption>{0}</figcaption></figure>",
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
            ..Default::default()
        })
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}\
th{background:#f4f4f4}figure{display:inline-block;margin:.5em;vertical-align:top}\
figcaption{font-size:.9em;color:#444}p.caption{font-size:.9em;color:#444;margin-top:0}\
p.warning{background:#fff3cd;border-left:4px solid #e0a800;padding:.4em .7em}";

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
    for note in table.protocol_notes() {
        let class = if note.starts_with("Warning") {
            "warning"
        } else {
            "caption"
        };
        let _ = writeln!(html, "<p class=\"{class}\">{}</p>", escape(&note));
    }
    html
}

/// What a training stage logged: losses per step and, when it evaluated during
/// training, FID per evaluation.
struct TrainingLog {
    losses: Vec<serde_json::Value>,
    scores: Option<Vec<serde_json::Value>>,
}

impl TrainingLog {
    fn read(input: &Input) -> Result<TrainingLog, StageError> {
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
        let losses = read(artifacts::LOSSES)?.ok_or_else(|| {
            StageError::Invalid(format!(
                "`{}` has no {}: `curves` takes Train stages",
                input.from,
                artifacts::LOSSES
            ))
        })?;
        Ok(TrainingLog {
            losses,
            scores: read(artifacts::SCORES)?,
        })
    }
}

/// (step, value) of `key` in log lines.
fn column(rows: &[serde_json::Value], key: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| Some((r["step"].as_f64()?, r[key].as_f64()?)))
        .collect()
}

/// Points per loss line: some per pixel of a chart's width, whatever the steps.
const CHART_POINTS: usize = 1200;

/// A panel's charts, each with its file-name suffix: FID against steps (when the runs
/// evaluated), then D's and G's losses. `logs` holds, per line, its runs' logs.
fn charts(panel: &Panel, logs: &[Vec<TrainingLog>], opts: &Charts) -> Vec<(&'static str, Chart)> {
    // Each line's legend label, colour and runs, the same in every chart of the panel.
    let styled: Vec<(String, [u8; 3], &[TrainingLog])> = panel
        .lines
        .iter()
        .zip(logs)
        .zip(PALETTE.iter().cycle())
        .map(|(((value, runs), logs), &color)| {
            let label = match (value.is_empty(), runs.len()) {
                (_, 1) => value.clone(),
                (true, n) => format!("{n} runs"),
                (false, n) => format!("{value} ({n} runs)"),
            };
            (label, color, logs.as_slice())
        })
        .collect();
    let mut out = Vec::new();
    let scored: Vec<Line> = styled
        .iter()
        .filter_map(|(label, color, runs)| {
            let curves: Vec<Vec<(f64, f64)>> = runs
                .iter()
                .filter_map(|log| Some(column(log.scores.as_ref()?, "fid")))
                .collect();
            if curves.is_empty() {
                return None;
            }
            let (points, band) = mean_over(&curves);
            Some(Line {
                label: label.clone(),
                color: *color,
                points,
                band,
                faint: Vec::new(),
            })
        })
        .collect();
    if !scored.is_empty() {
        out.push((
            "fid",
            Chart {
                title: format!("{}: FID", panel.name),
                x_label: "step".into(),
                y_label: if opts.log_fid {
                    "FID (log scale)"
                } else {
                    "FID"
                }
                .into(),
                log_y: opts.log_fid,
                lines: scored,
            },
        ));
    }
    for (key, who) in [("d_loss", "D"), ("g_loss", "G")] {
        let lines = styled
            .iter()
            .map(|(label, color, runs)| {
                let curves: Vec<Vec<(f64, f64)>> =
                    runs.iter().map(|log| column(&log.losses, key)).collect();
                let (raw, _) = mean_over(&curves);
                let smoothed = smooth(&raw, (raw.len() / 50).max(1));
                Line {
                    label: label.clone(),
                    color: *color,
                    points: thin(&smoothed, CHART_POINTS),
                    band: Vec::new(),
                    faint: thin(&raw, CHART_POINTS),
                }
            })
            .collect();
        out.push((
            key,
            Chart {
                title: format!("{}: {who} loss", panel.name),
                x_label: "step".into(),
                y_label: format!("{who} loss"),
                log_y: false,
                lines,
            },
        ));
    }
    out
}

/// What the lines of a panel's charts are, under them.
fn caption(panel: &Panel, opts: &Charts) -> String {
    let averaged = panel.lines.iter().any(|(_, runs)| runs.len() > 1);
    let mut text = escape(&panel.name);
    if let (true, Some(var)) = (averaged, &opts.mean_over) {
        let _ = write!(
            text,
            ": each line is the mean over `{}`, the band ± one sd (FID)",
            escape(var)
        );
    }
    text.push_str(". Losses are a running mean over 2% of the steps, the raw values faint.");
    text
}

/// The labelled grid of an image set's preview, with its PNG inside.
fn grid(input: &Input) -> Result<String, KindError> {
    let source = input.path.join(artifacts::PREVIEW);
    if !source.exists() {
        return Err(StageError::Invalid(format!(
            "`{}` has no {}: `grids` takes Sample or Dataset stages",
            input.from,
            artifacts::PREVIEW
        ))
        .into());
    }
    let png = std::fs::read(&source)
        .map_err(StageError::io(format!("cannot read {}", source.display())))?;
    let images = artifacts::images(&input.path)?;
    let header = images.header();
    let layout = data::preview::Layout::of(header);
    let rows = (0..layout.rows)
        .map(|row| Row {
            top: layout.row_top(row),
            height: layout.image.0,
            label: header.classes[row].clone(),
        })
        .collect();
    Ok(Grid {
        png: &png,
        size: layout.size,
        rows,
    }
    .svg())
}
