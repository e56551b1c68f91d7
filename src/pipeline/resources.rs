//! `resources`: what stages ask of a cluster scheduler, by stage, group or pattern.
//!
//! ```ron
//! resources: {
//!     "*":       (cpus: 2, mem: "8G", time: "1:00:00"),
//!     "train_*": (cpus: 8, mem: "32G", time: "2-00:00:00", partition: "gpu"),
//! },
//! ```
//!
//! Entries apply in the order written, a later one overriding the fields it sets. They
//! never enter a key: where a stage runs does not change what it computes. Local runs
//! ignore them; `pipe run --executor slurm` turns them into `sbatch` options, over the
//! defaults given on its command line. GPUs are not here: a stage's kind says how many
//! it needs (`device: Cuda(0)`, `Command(gpus: 2)`).

use ronspan::{Value, ValueKind};
use serde::{Deserialize, Serialize};

use super::{Diagnostic, Pipeline, resolve};

/// One stage's requests (each `None` leaves the executor's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// CPU cores (`--cpus-per-task`), which the stage also uses as its threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory in Slurm's syntax: `16G`, `500M`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit in Slurm's syntax: `90` (minutes), `4:00:00`, `2-00:00:00`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Further `sbatch` arguments, after those given on the command line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sbatch: Vec<String>,
}

impl Resources {
    /// `self` with the fields `over` sets replaced (its `sbatch` arguments appended).
    pub fn overridden_by(mut self, over: &Resources) -> Resources {
        let pick = |mine: &mut Option<String>, theirs: &Option<String>| {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        };
        if over.cpus.is_some() {
            self.cpus = over.cpus;
        }
        pick(&mut self.mem, &over.mem);
        pick(&mut self.time, &over.time);
        pick(&mut self.partition, &over.partition);
        pick(&mut self.account, &over.account);
        pick(&mut self.qos, &over.qos);
        self.sbatch.extend(over.sbatch.iter().cloned());
        self
    }

    /// Checks the values Slurm would refuse only at submission, one by one.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.cpus == Some(0) {
            return Err(("cpus", "`cpus` must be at least 1".into()));
        }
        if let Some(mem) = &self.mem {
            slurm::check_mem(mem).map_err(|e| ("mem", e))?;
        }
        if let Some(time) = &self.time {
            slurm::check_time(time).map_err(|e| ("time", e))?;
        }
        Ok(())
    }
}

/// Gives each stage the resources of the entries that name it.
pub(super) fn apply(pipeline: &mut Pipeline, written: Option<&Value>) -> Result<(), Diagnostic> {
    let Some(value) = written else {
        return Ok(());
    };
    let ValueKind::Map(entries) = &value.kind else {
        return Err(Diagnostic::new(
            format!(
                "`resources` must be a map of stages to resources, found {}",
                value.describe()
            ),
            Some(value.span),
        )
        .help("e.g. `resources: {\"train_*\": (cpus: 8, mem: \"32G\", time: \"2-00:00:00\")}`"));
    };
    for (target, entry) in entries {
        let name = target.as_str().ok_or_else(|| {
            Diagnostic::new(
                format!(
                    "a `resources` key names stages as a string, found {}",
                    target.describe()
                ),
                Some(target.span),
            )
        })?;
        let stages = resolve::targets(pipeline, None, name).map_err(|d| Diagnostic {
            span: Some(target.span),
            ..d
        })?;
        let resources: Resources = ronspan::from_value(entry)?;
        resources.check().map_err(|(field, message)| {
            let at = entry.get_path(&[field]).map_or(entry.span, |v| v.span);
            Diagnostic::new(message, Some(at))
        })?;
        for i in stages {
            let stage = &mut pipeline.stages[i];
            stage.resources = std::mem::take(&mut stage.resources).overridden_by(&resources);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_fields_win_and_sbatch_arguments_add_up() {
        let base = Resources {
            cpus: Some(2),
            mem: Some("8G".into()),
            sbatch: vec!["--exclusive".into()],
            ..Resources::default()
        };
        let over = Resources {
            mem: Some("32G".into()),
            partition: Some("gpu".into()),
            sbatch: vec!["--constraint=a100".into()],
            ..Resources::default()
        };
        let both = base.overridden_by(&over);
        assert_eq!(both.cpus, Some(2));
        assert_eq!(both.mem.as_deref(), Some("32G"));
        assert_eq!(both.partition.as_deref(), Some("gpu"));
        assert_eq!(both.sbatch, ["--exclusive", "--constraint=a100"]);
    }
}
