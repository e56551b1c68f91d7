//! Which runs share a chart: stages named by their `ForEach` variables are grouped into
//! panels (one per value of the variables that are neither the legend nor averaged
//! over), each with one line per legend value made of the runs it averages.

use super::ReportError;
use super::table::variable_list;

/// One chart's worth of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel<'a> {
    /// The group and the variables that set the panel apart: `train[backbone=dcgan32]`.
    pub name: String,
    /// (legend value, the stages averaged into the line), in the order first seen.
    pub lines: Vec<(String, Vec<&'a str>)>,
}

/// Groups `stages` into panels. `legend` names the variable whose values are the
/// lines; without it, the last variable of each name that is not `mean_over` (the
/// `ForEach`'s innermost, as `method` in `method: [..], seed: [..]`).
pub fn panels<'a>(
    stages: &[&'a str],
    legend: Option<&str>,
    mean_over: Option<&str>,
) -> Result<Vec<Panel<'a>>, ReportError> {
    let mut out: Vec<Panel<'a>> = Vec::new();
    for &stage in stages {
        let group = stage.split('[').next().unwrap_or(stage);
        let vars: Vec<(String, String)> = variable_list(stage)
            .into_iter()
            .filter(|(k, _)| Some(k.as_str()) != mean_over)
            .collect();
        let legend_at = match legend {
            Some(name) => Some(vars.iter().position(|(k, _)| k == name).ok_or_else(|| {
                ReportError::Variable {
                    message: format!(
                        "charts: stage `{stage}` has no ForEach variable `{name}` for the legend"
                    ),
                }
            })?),
            None => vars.len().checked_sub(1),
        };
        let label = legend_at.map_or(String::new(), |i| vars[i].1.clone());
        let rest: Vec<String> = vars
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != legend_at)
            .map(|(_, (k, v))| format!("{k}={v}"))
            .collect();
        let name = if rest.is_empty() {
            group.to_string()
        } else {
            format!("{group}[{}]", rest.join(","))
        };
        let panel = match out.iter_mut().position(|p| p.name == name) {
            Some(i) => &mut out[i],
            None => {
                out.push(Panel {
                    name,
                    lines: Vec::new(),
                });
                out.last_mut().unwrap()
            }
        };
        match panel.lines.iter_mut().find(|(l, _)| *l == label) {
            Some((_, runs)) => runs.push(stage),
            None => panel.lines.push((label, vec![stage])),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE1: [&str; 6] = [
        "train_cifar[dataset=cifar10,backbone=dcgan32,method=ac,seed=0]",
        "train_cifar[dataset=cifar10,backbone=dcgan32,method=ac,seed=1]",
        "train_cifar[dataset=cifar10,backbone=dcgan32,method=contra,seed=0]",
        "train_cifar[dataset=cifar10,backbone=biggan32,method=contra,seed=0]",
        "train_tiny[dataset=tiny,backbone=biggan64,method=ac,seed=0]",
        "train",
    ];

    #[test]
    fn one_panel_per_group_and_setting_one_line_per_method() {
        let panels = panels(&TABLE1, None, Some("seed")).unwrap();
        let names: Vec<&str> = panels.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "train_cifar[dataset=cifar10,backbone=dcgan32]",
                "train_cifar[dataset=cifar10,backbone=biggan32]",
                "train_tiny[dataset=tiny,backbone=biggan64]",
                "train",
            ]
        );
        assert_eq!(
            panels[0].lines,
            [
                ("ac".to_string(), TABLE1[..2].to_vec()),
                ("contra".to_string(), vec![TABLE1[2]]),
            ]
        );
        assert_eq!(panels[3].lines, [(String::new(), vec!["train"])]);
    }

    #[test]
    fn a_named_legend_and_no_averaging() {
        let panels = panels(&TABLE1[..3], Some("backbone"), None).unwrap();
        assert_eq!(panels.len(), 3, "{panels:?}");
        assert_eq!(
            panels[0].name,
            "train_cifar[dataset=cifar10,method=ac,seed=0]"
        );
        assert_eq!(panels[0].lines[0].0, "dcgan32");
        let missing = super::panels(&TABLE1[5..], Some("method"), None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("`train` has no ForEach variable `method`")
        );
    }
}
