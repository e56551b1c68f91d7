//! The tables of a report: metrics of a group of stages laid out by the stages'
//! `ForEach` variables, the variables on neither axis (usually the seed) aggregated.

use explain::Explain;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ReportError;
use super::protocol::Protocols;
use super::series::mean_sd;

/// How the values of one cell (one per seed, say) become one number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Aggregate {
    /// Mean ± sample standard deviation, as the paper's Table 1.
    #[default]
    MeanSd,
    /// The lowest value (the best run by FID, as the paper's Table 2).
    Min,
    /// The highest value (the best run by IS or accuracy).
    Max,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The table's heading.
    pub title: String,
    /// A `ForEach` group (or a pattern with `*`) of stages whose metrics fill the table.
    pub stages: String,
    /// The record metrics to show (`fid`, `is_mean`, `accuracy`, …).
    pub metrics: Vec<String>,
    /// Variables whose values label the rows, in order.
    #[serde(default)]
    pub rows: Vec<String>,
    /// A variable whose values make the columns (one per metric); without it, the
    /// metrics are the columns.
    #[serde(default)]
    pub columns: Option<String>,
    /// How the runs of one cell (the variables on neither axis, the seed) combine.
    #[serde(default)]
    pub aggregate: Aggregate,
    /// Digits after the decimal point.
    #[serde(default = "default_digits")]
    pub digits: usize,
}

fn default_digits() -> usize {
    3
}

/// The numbers of one stage, named as the pipeline names it (`score[arch=big,seed=0]`:
/// its `ForEach` variables are read from the name).
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    pub stage: &'a str,
    pub metrics: &'a BTreeMap<String, f64>,
    /// The conditions the metrics were measured under.
    pub protocol: &'a BTreeMap<String, String>,
}

/// One cell: the values gathered into it and their aggregate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub row: Vec<String>,
    pub column: Option<String>,
    pub metric: String,
    /// The stages that fed the cell, with their values.
    pub values: Vec<(String, f64)>,
    pub value: Option<f64>,
    pub sd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub title: String,
    pub row_names: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// (column value, metric) per column, in order.
    pub columns: Vec<(Option<String>, String)>,
    pub cells: Vec<Cell>,
    /// What the cells were measured under, and where that differs within a row.
    pub protocol: Protocols,
    #[serde(skip)]
    spec: TableSpec,
}

/// A stage name's `ForEach` variables: `score[model=acgan,seed=0]` → model, seed.
pub fn variables(stage: &str) -> BTreeMap<String, String> {
    variable_list(stage).into_iter().collect()
}

/// A stage name's `ForEach` variables in the order the name gives them (the order of
/// the `ForEach`, outermost first).
pub fn variable_list(stage: &str) -> Vec<(String, String)> {
    let Some(inner) = stage
        .split_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
    else {
        return Vec::new();
    };
    inner
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Table {
    /// Lays out `inputs` (the stages of `spec.stages`) as `spec` says.
    pub fn build(spec: &TableSpec, inputs: &[Measured]) -> Result<Table, ReportError> {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut column_values: Vec<Option<String>> = Vec::new();
        let mut cells: BTreeMap<(usize, usize, usize), Vec<(String, f64)>> = BTreeMap::new();
        let mut protocols = Vec::with_capacity(inputs.len());
        for input in inputs {
            let vars = variables(input.stage);
            let value_of = |name: &str| {
                vars.get(name).cloned().ok_or_else(|| ReportError::Variable {
                    message: format!(
                        "table \"{}\": stage `{}` has no ForEach variable `{name}` (it has: {})",
                        spec.title,
                        input.stage,
                        if vars.is_empty() {
                            "none".to_string()
                        } else {
                            vars.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                })
            };
            let row = spec
                .rows
                .iter()
                .map(|name| value_of(name))
                .collect::<Result<Vec<_>, _>>()?;
            let column = spec.columns.as_deref().map(value_of).transpose()?;
            protocols.push((row.clone(), input.stage, input.protocol));
            let r = position_or_push(&mut rows, row);
            let c = position_or_push(&mut column_values, column);
            for (m, metric) in spec.metrics.iter().enumerate() {
                if let Some(&value) = input.metrics.get(metric) {
                    cells
                        .entry((r, c, m))
                        .or_default()
                        .push((input.stage.to_string(), value));
                }
            }
        }
        let columns: Vec<(Option<String>, String)> = column_values
            .iter()
            .flat_map(|c| spec.metrics.iter().map(move |m| (c.clone(), m.clone())))
            .collect();
        let mut out = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (c, column) in column_values.iter().enumerate() {
                for (m, metric) in spec.metrics.iter().enumerate() {
                    let values = cells.remove(&(r, c, m)).unwrap_or_default();
                    let (value, sd) = aggregate(spec.aggregate, &values);
                    out.push(Cell {
                        row: row.clone(),
                        column: column.clone(),
                        metric: metric.clone(),
                        values,
                        value,
                        sd,
                    });
                }
            }
        }
        Ok(Table {
            title: spec.title.clone(),
            row_names: spec.rows.clone(),
            rows,
            columns,
            cells: out,
            protocol: Protocols::of(&protocols),
            spec: spec.clone(),
        })
    }

    fn cell(&self, row: &[String], column: &(Option<String>, String)) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.row == row && c.column == column.0 && c.metric == column.1)
    }

    /// A cell as the paper prints it: `10.597 ± 0.273`, a bare value for one run, `–`
    /// where no stage reported the metric.
    pub fn format(&self, cell: Option<&Cell>) -> String {
        let digits = self.spec.digits;
        match cell.and_then(|c| c.value.map(|v| (v, c.sd))) {
            None => "–".into(),
            Some((v, Some(sd))) => format!("{v:.digits$} ± {sd:.digits$}"),
            Some((v, None)) => format!("{v:.digits$}"),
        }
    }

    /// Column headers: the column value, with the metric where there are several.
    pub fn headers(&self) -> Vec<String> {
        let mut headers = self.row_names.clone();
        for (column, metric) in &self.columns {
            headers.push(match column {
                Some(c) if self.spec.metrics.len() == 1 => c.clone(),
                Some(c) => format!("{c} {metric}"),
                None => metric.clone(),
            });
        }
        headers
    }

    /// The table as rows of formatted strings, headers first.
    pub fn grid(&self) -> Vec<Vec<String>> {
        let mut grid = vec![self.headers()];
        for row in &self.rows {
            let mut line = row.clone();
            for column in &self.columns {
                line.push(self.format(self.cell(row, column)));
            }
            grid.push(line);
        }
        grid
    }

    pub fn markdown(&self) -> String {
        let grid = self.grid();
        // A `|` inside a cell would end it, a line break the row.
        let cell = |c: &String| c.replace('|', "\\|").replace(['\r', '\n'], " ");
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(cell).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&grid[0]);
        out.push_str(&line(&vec!["---".to_string(); grid[0].len()]));
        for row in &grid[1..] {
            out.push_str(&line(row));
        }
        for note in self.protocol_notes() {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }

    /// Sentences under the table: the protocol its cells share, and a warning naming
    /// each difference.
    pub fn protocol_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(shared) = self.protocol.shared_line() {
            notes.push(format!("Measured with: {shared}."));
        }
        let differences = self.protocol.difference_lines();
        if !differences.is_empty() {
            notes.push(format!(
                "Warning: cells of this table were measured under different protocols: {}.",
                differences.join("; ")
            ));
        }
        notes
    }

    /// One line per cell, for spreadsheets and scripts: row variables, column, metric,
    /// value, sd, number of runs.
    pub fn csv(&self) -> String {
        let mut out = self.row_names.clone();
        out.extend(
            [
                self.spec.columns.clone().unwrap_or_else(|| "column".into()),
                "metric".into(),
                "value".into(),
                "sd".into(),
                "runs".into(),
            ]
            .iter()
            .cloned(),
        );
        let mut text = csv_line(&out) + "\n";
        for cell in &self.cells {
            let mut fields = cell.row.clone();
            fields.push(cell.column.clone().unwrap_or_default());
            fields.push(cell.metric.clone());
            fields.push(cell.value.map(|v| v.to_string()).unwrap_or_default());
            fields.push(cell.sd.map(|v| v.to_string()).unwrap_or_default());
            fields.push(cell.values.len().to_string());
            text.push_str(&csv_line(&fields));
            text.push('\n');
        }
        text
    }
}

fn position_or_push<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    match list.iter().position(|x| *x == item) {
        Some(i) => i,
        None => {
            list.push(item);
            list.len() - 1
        }
    }
}

fn aggregate(how: Aggregate, values: &[(String, f64)]) -> (Option<f64>, Option<f64>) {
    let xs: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
    if xs.is_empty() {
        return (None, None);
    }
    match how {
        Aggregate::MeanSd => {
            let (mean, sd) = mean_sd(&xs);
            (Some(mean), sd)
        }
        Aggregate::Min => (xs.iter().copied().reduce(f64::min), None),
        Aggregate::Max => (xs.iter().copied().reduce(f64::max), None),
    }
}

/// One CSV line (no line end): fields with a comma, quote or line break quoted.
pub fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    quoted.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Input = (String, BTreeMap<String, f64>, BTreeMap<String, String>);

    fn input(from: &str, metrics: &[(&str, f64)]) -> Input {
        let metrics = metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        (from.to_string(), metrics, BTreeMap::new())
    }

    fn measured(inputs: &[Input]) -> Vec<Measured<'_>> {
        inputs
            .iter()
            .map(|(stage, metrics, protocol)| Measured {
                stage,
                metrics,
                protocol,
            })
            .collect()
    }

    fn spec(columns: Option<&str>, metrics: &[&str], aggregate: Aggregate) -> TableSpec {
        TableSpec {
            title: "t".into(),
            stages: "score".into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            rows: vec!["arch".into()],
            columns: columns.map(Into::into),
            aggregate,
            digits: 2,
        }
    }

    #[test]
    fn rows_columns_and_mean_sd_over_the_other_variables() {
        let inputs = [
            input("score[arch=big,cond=ac,seed=0]", &[("fid", 10.0)]),
            input("score[arch=big,cond=ac,seed=1]", &[("fid", 12.0)]),
            input("score[arch=big,cond=contra,seed=0]", &[("fid", 9.0)]),
            input("score[arch=res,cond=ac,seed=0]", &[]),
        ];
        let table = Table::build(
            &spec(Some("cond"), &["fid"], Aggregate::MeanSd),
            &measured(&inputs),
        )
        .unwrap();
        assert_eq!(
            table.grid(),
            [
                vec!["arch", "ac", "contra"],
                vec!["big", "11.00 ± 1.41", "9.00"],
                vec!["res", "–", "–"],
            ]
        );
        assert!(
            table
                .markdown()
                .starts_with("| arch | ac | contra |\n| --- | --- | --- |\n")
        );
        let csv = table.csv();
        assert!(
            csv.starts_with("arch,cond,metric,value,sd,runs\nbig,ac,fid,11,1.4142"),
            "{csv}"
        );
        let min = Table::build(
            &spec(Some("cond"), &["fid"], Aggregate::Min),
            &measured(&inputs),
        )
        .unwrap();
        assert_eq!(min.grid()[1], ["big", "10.00", "9.00"]);
    }

    #[test]
    fn metrics_as_columns_and_missing_variables_named() {
        let inputs = [input("score[arch=big]", &[("fid", 1.0), ("is_mean", 2.0)])];
        let table = Table::build(
            &spec(None, &["fid", "is_mean"], Aggregate::MeanSd),
            &measured(&inputs),
        )
        .unwrap();
        assert_eq!(table.grid()[0], ["arch", "fid", "is_mean"]);
        assert_eq!(table.grid()[1], ["big", "1.00", "2.00"]);
        let err = Table::build(
            &spec(Some("cond"), &["fid"], Aggregate::MeanSd),
            &measured(&inputs),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`score[arch=big]` has no ForEach variable `cond` (it has: arch)"),
            "{err}"
        );
    }

    #[test]
    fn markdown_escapes_bars_and_csv_quotes_line_breaks() {
        let inputs = [
            input("score[arch=a|b]", &[("fid", 1.0)]),
            input("score[arch=x\ry]", &[("fid", 2.0)]),
        ];
        let table =
            Table::build(&spec(None, &["fid"], Aggregate::MeanSd), &measured(&inputs)).unwrap();
        let markdown = table.markdown();
        assert!(markdown.contains("| a\\|b |"), "{markdown}");
        assert_eq!(markdown.lines().count(), 4, "{markdown}");
        let csv = table.csv();
        assert!(csv.contains("\"x\ry\""), "{csv:?}");
    }
}
