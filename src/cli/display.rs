//! The live display of a run: a spinner per running stage on stderr (when it is a
//! terminal), one line per finished stage on stdout.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipe::schedule::Observer;
use pipe::summary::StageReport;

pub struct Display {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Print finished stages (off for `--json`).
    lines: bool,
}

impl Display {
    pub fn new(lines: bool, quiet: bool) -> Display {
        let target = if !quiet && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Display {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            lines,
        }
    }

    /// Prints above the spinners.
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            super::out(line);
        } else {
            let _ = self.multi.println(line);
        }
    }
}

impl Observer for Display {
    fn started(&self, stage: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                .expect("valid template"),
        );
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars
            .lock()
            .expect("display poisoned")
            .insert(stage.to_string(), bar);
    }

    fn progress(&self, stage: &str, done: u64, total: Option<u64>, message: &str) {
        let bars = self.bars.lock().expect("display poisoned");
        let Some(bar) = bars.get(stage) else { return };
        if let Some(total) = total
            && bar.length() != Some(total)
        {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} {eta} {wide_msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
        }
        bar.set_position(done);
        bar.set_message(message.to_string());
    }

    fn finished(&self, report: &StageReport) {
        if let Some(bar) = self
            .bars
            .lock()
            .expect("display poisoned")
            .remove(&report.stage)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if self.lines {
            self.println(&report.line());
        }
    }
}
