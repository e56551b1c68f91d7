//! `pipe metrics`: the record metrics of stages side by side, one row a stage with its
//! `ForEach` variables as columns, or averaged over one variable (`--mean-over seed`).
//! No Report stage needed; a stage that is not up to date shows its last record's
//! numbers, marked stale.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use pipe::plan::{State, previous, states};
use report::series::mean_sd;
use report::table::csv_line;
use serde_json::json;

use super::{CliError, Ctx, Sets, file_and_stages, load, out, print_json, select};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON; default `pipe.ron` in the current folder), then stages,
    /// ForEach groups or patterns with `*` (default: every stage with metrics).
    #[arg(value_name = "FILE] [STAGE")]
    targets: Vec<String>,
    /// Average over this ForEach variable: mean and sample sd of each metric, and the
    /// number of runs, per combination of the other variables.
    #[arg(long, value_name = "VAR")]
    mean_over: Option<String>,
    /// JSON on stdout.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV on stdout.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    sets: Sets,
}

/// One stage's numbers.
struct Row {
    stage: String,
    vars: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    /// Whether the numbers are of the stage's current key.
    current: bool,
}

/// Rows averaged over a variable: the other variables, and per metric (mean, sd, n).
struct Mean {
    group: String,
    vars: BTreeMap<String, String>,
    metrics: BTreeMap<String, (f64, Option<f64>, usize)>,
}

pub fn metrics(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let (file, stages) = file_and_stages(args.targets)?;
    let pipeline = load(&file, &args.sets)?;
    let chosen: BTreeSet<usize> = if stages.is_empty() {
        (0..pipeline.stages.len()).collect()
    } else {
        select(&pipeline, &stages)?.into_iter().collect()
    };
    let store = ctx.store()?;
    let refs = store.refs(&pipeline.name)?;
    let states = states(&pipeline, &store)?;
    let mut rows = Vec::new();
    for i in chosen {
        let stage = &pipeline.stages[i];
        let (metrics, current) = match &states[i] {
            State::UpToDate { completed, .. } => (Some(completed.metrics.clone()), true),
            _ => (
                previous(&store, &refs, &stage.name)?.map(|r| r.metrics),
                false,
            ),
        };
        let Some(metrics) = metrics.filter(|m| !m.is_empty()) else {
            continue;
        };
        rows.push(Row {
            stage: stage.name.clone(),
            vars: stage.vars.iter().cloned().collect(),
            metrics,
            current,
        });
    }
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let vars: BTreeSet<&String> = rows.iter().flat_map(|r| r.vars.keys()).collect();
    match &args.mean_over {
        None => print_rows(&rows, &vars, &names, args.json, args.csv),
        Some(var) => {
            let means = mean_over(&rows, var);
            let others: BTreeSet<&String> = vars.iter().copied().filter(|v| *v != var).collect();
            print_means(&means, var, &others, &names, args.json, args.csv);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Groups rows by their stage group (the name before `[`) and every variable but
/// `var`, in the order they come.
fn mean_over(rows: &[Row], var: &str) -> Vec<Mean> {
    let mut groups: Vec<(String, BTreeMap<String, String>, Vec<&Row>)> = Vec::new();
    for row in rows {
        let group = row
            .stage
            .split('[')
            .next()
            .unwrap_or(&row.stage)
            .to_string();
        let mut vars = row.vars.clone();
        vars.remove(var);
        match groups
            .iter_mut()
            .find(|(g, v, _)| *g == group && *v == vars)
        {
            Some((_, _, members)) => members.push(row),
            None => groups.push((group, vars, vec![row])),
        }
    }
    groups
        .into_iter()
        .map(|(group, vars, members)| {
            let mut metrics = BTreeMap::new();
            let names: BTreeSet<&String> = members.iter().flat_map(|r| r.metrics.keys()).collect();
            for name in names {
                let values: Vec<f64> = members
                    .iter()
                    .filter_map(|r| r.metrics.get(name))
                    .copied()
                    .collect();
                let (mean, sd) = mean_sd(&values);
                metrics.insert(name.clone(), (mean, sd, values.len()));
            }
            Mean {
                group,
                vars,
                metrics,
            }
        })
        .collect()
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn print_rows(
    rows: &[Row],
    vars: &BTreeSet<&String>,
    names: &BTreeSet<&String>,
    json: bool,
    csv: bool,
) {
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| json!({"stage": r.stage, "vars": r.vars, "metrics": r.metrics, "current": r.current}))
            .collect();
        print_json(&json!({"schema": 1, "rows": rows}));
        return;
    }
    let mut header = vec!["stage".to_string()];
    header.extend(vars.iter().map(|v| v.to_string()));
    header.extend(names.iter().map(|n| n.to_string()));
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![if r.current {
                r.stage.clone()
            } else {
                format!("{} (stale)", r.stage)
            }];
            line.extend(
                vars.iter()
                    .map(|v| r.vars.get(*v).cloned().unwrap_or_default()),
            );
            line.extend(
                names
                    .iter()
                    .map(|n| r.metrics.get(*n).map(|v| number(*v)).unwrap_or_default()),
            );
            line
        })
        .collect();
    print_table(header, lines, csv);
}

fn print_means(
    means: &[Mean],
    var: &str,
    others: &BTreeSet<&String>,
    names: &BTreeSet<&String>,
    json: bool,
    csv: bool,
) {
    if json {
        let rows: Vec<_> = means
            .iter()
            .map(|m| {
                let metrics: BTreeMap<_, _> = m
                    .metrics
                    .iter()
                    .map(|(k, (mean, sd, n))| (k, json!({"mean": mean, "sd": sd, "runs": n})))
                    .collect();
                json!({"group": m.group, "vars": m.vars, "metrics": metrics})
            })
            .collect();
        print_json(&json!({"schema": 1, "mean_over": var, "rows": rows}));
        return;
    }
    let mut header = vec!["group".to_string()];
    header.extend(others.iter().map(|v| v.to_string()));
    header.extend(names.iter().map(|n| n.to_string()));
    header.push(format!("runs ({var})"));
    let lines: Vec<Vec<String>> = means
        .iter()
        .map(|m| {
            let mut line = vec![m.group.clone()];
            line.extend(
                others
                    .iter()
                    .map(|v| m.vars.get(*v).cloned().unwrap_or_default()),
            );
            line.extend(names.iter().map(|n| match m.metrics.get(*n) {
                Some((mean, Some(sd), _)) => format!("{} ± {}", number(*mean), number(*sd)),
                Some((mean, None, _)) => number(*mean),
                None => String::new(),
            }));
            let runs = m.metrics.values().map(|(_, _, n)| *n).max().unwrap_or(0);
            line.push(runs.to_string());
            line
        })
        .collect();
    print_table(header, lines, csv);
}

/// Aligned columns, or CSV.
fn print_table(header: Vec<String>, lines: Vec<Vec<String>>, csv: bool) {
    if csv {
        for line in std::iter::once(&header).chain(&lines) {
            out(csv_line(line));
        }
        return;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(&header)
                .chain(&lines)
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out(cells.join("  ").trim_end());
    }
}
