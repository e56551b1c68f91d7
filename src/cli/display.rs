//! The live display of a run. On a terminal: a line for the whole run (stages done of
//! all, running, failed, time) over a bar per running stage with its rate and time left.
//! Elsewhere (a log file, CI): plain lines on stderr, a stage's progress at most every
//! `PIPE_PROGRESS_SECS` (30 s by default) so that logs stay readable. Finished stages
//! get one line each on stdout either way.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use pipe::schedule::Observer;
use pipe::summary::StageReport;

pub struct Display {
    mode: Mode,
    counts: Mutex<Counts>,
    /// Print finished stages (off for `--json`).
    lines: bool,
    /// Where finished stages' lines go when stdout is a file or a pipe: a buffer
    /// flushed every second and at the end (a no-op rerun of 100,000 stages made
    /// 100,000 writes). On a terminal, each line at once.
    buffered: Option<Mutex<Buffered>>,
}

struct Buffered {
    out: std::io::BufWriter<std::io::Stdout>,
    flushed: Instant,
}

impl Buffered {
    fn line(&mut self, line: &str) {
        use std::io::Write;
        if writeln!(self.out, "{line}").is_err() {
            std::process::exit(0);
        }
        if self.flushed.elapsed() > Duration::from_secs(1) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        use std::io::Write;
        if self.out.flush().is_err() {
            std::process::exit(0);
        }
        self.flushed = Instant::now();
    }
}

enum Mode {
    Terminal {
        multi: MultiProgress,
        run: ProgressBar,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    Plain {
        every: Duration,
        stages: Mutex<HashMap<String, Pace>>,
    },
    Quiet,
}

#[derive(Default)]
struct Counts {
    total: usize,
    finished: usize,
    failed: usize,
    running: usize,
}

impl Counts {
    /// What a plain line starts with: `[finished/total]`.
    fn prefix(&self) -> String {
        format!("[{}/{}]", self.finished, self.total)
    }

    fn line(&self) -> String {
        let mut line = format!(
            "{}/{} stages · {} running",
            self.finished, self.total, self.running
        );
        if self.failed > 0 {
            line.push_str(&format!(" · {} failed", self.failed));
        }
        line
    }
}

/// A stage's rate, from the first progress it reported in its current phase (a
/// resumed training starts past 0; a new total is a new phase, as a classifier's
/// test after its training), and when its last plain line went out.
struct Pace {
    first: Option<(Instant, u64)>,
    total: Option<u64>,
    printed: Option<Instant>,
}

impl Pace {
    /// Units per second since the first report.
    fn rate(&self, done: u64) -> Option<f64> {
        let (at, from) = self.first?;
        let seconds = at.elapsed().as_secs_f64();
        (seconds > 0.0 && done > from).then(|| (done - from) as f64 / seconds)
    }
}

impl Display {
    /// A display for a run of `total` stages.
    pub fn new(total: usize, lines: bool, quiet: bool) -> Display {
        let mode = match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let run = multi.add(ProgressBar::new_spinner());
                run.set_style(
                    ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
                        .expect("valid template"),
                );
                run.enable_steady_tick(Duration::from_millis(120));
                Mode::Terminal {
                    multi,
                    run,
                    bars: Mutex::new(HashMap::new()),
                }
            }
            (false, false) => Mode::Plain {
                every: Duration::from_secs_f64(
                    std::env::var("PIPE_PROGRESS_SECS")
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(30.0),
                ),
                stages: Mutex::new(HashMap::new()),
            },
        };
        let buffered = (!matches!(mode, Mode::Terminal { .. }) && !std::io::stdout().is_terminal())
            .then(|| {
                Mutex::new(Buffered {
                    out: std::io::BufWriter::new(std::io::stdout()),
                    flushed: Instant::now(),
                })
            });
        let display = Display {
            mode,
            counts: Mutex::new(Counts {
                total,
                ..Counts::default()
            }),
            lines,
            buffered,
        };
        display.update(|_| {});
        display
    }

    /// Prints above the bars.
    pub fn println(&self, line: &str) {
        match (&self.mode, &self.buffered) {
            (Mode::Terminal { multi, .. }, _) => {
                let _ = multi.println(line);
            }
            (_, Some(buffered)) => buffered.lock().expect("display poisoned").line(line),
            (_, None) => super::out(line),
        }
    }

    /// Writes out buffered lines: before anything else is printed (and when dropped).
    pub fn flush(&self) {
        if let Some(buffered) = &self.buffered {
            buffered.lock().expect("display poisoned").flush();
        }
    }

    /// Changes the counts and shows them: on the run's line, or as the prefix plain
    /// lines get (returned).
    fn update(&self, change: impl FnOnce(&mut Counts)) -> String {
        let mut counts = self.counts.lock().expect("display poisoned");
        change(&mut counts);
        if let Mode::Terminal { run, .. } = &self.mode {
            run.set_message(counts.line());
        }
        counts.prefix()
    }
}

impl Observer for Display {
    fn started(&self, stage: &str) {
        let prefix = self.update(|c| c.running += 1);
        match &self.mode {
            Mode::Terminal { multi, bars, .. } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {elapsed} {wide_msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(stage.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.lock()
                    .expect("display poisoned")
                    .insert(stage.to_string(), bar);
            }
            Mode::Plain { stages, .. } => {
                eprintln!("{prefix} started {stage}");
                let pace = Pace {
                    first: None,
                    total: None,
                    printed: None,
                };
                stages
                    .lock()
                    .expect("display poisoned")
                    .insert(stage.to_string(), pace);
            }
            Mode::Quiet => {}
        }
    }

    fn progress(&self, stage: &str, done: u64, total: Option<u64>, message: &str) {
        match &self.mode {
            Mode::Terminal { bars, .. } => {
                let bars = bars.lock().expect("display poisoned");
                let Some(bar) = bars.get(stage) else { return };
                if let Some(total) = total
                    && bar.length() != Some(total)
                {
                    bar.set_length(total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  {spinner} {prefix} [{bar:24}] {pos}/{len} · {rate} · {left} left · {wide_msg}",
                        )
                        .expect("valid template")
                        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&rate(s.per_sec()));
                        })
                        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&duration(s.eta().as_secs_f64()));
                        })
                        .progress_chars("=> "),
                    );
                }
                bar.set_position(done);
                bar.set_message(message.to_string());
            }
            Mode::Plain { every, stages } => {
                let mut stages = stages.lock().expect("display poisoned");
                let Some(pace) = stages.get_mut(stage) else {
                    return;
                };
                let now = Instant::now();
                if pace.total != total {
                    (pace.first, pace.total) = (None, total);
                }
                let first = *pace.first.get_or_insert((now, done));
                let last = total == Some(done);
                let due = pace
                    .printed
                    .map_or(now - first.0 >= *every, |t| now - t >= *every);
                if !(due || last) {
                    return;
                }
                pace.printed = Some(now);
                let mut line = match total {
                    Some(total) => format!(
                        "{stage}: {done}/{total} ({:.0}%)",
                        100.0 * done as f64 / total.max(1) as f64
                    ),
                    None => format!("{stage}: {done}"),
                };
                if let Some(per_second) = pace.rate(done) {
                    line.push_str(&format!(" · {}", rate(per_second)));
                    if let Some(total) = total.filter(|&t| t > done) {
                        let left = (total - done) as f64 / per_second;
                        line.push_str(&format!(" · {} left", duration(left)));
                    }
                }
                if !message.is_empty() {
                    line.push_str(&format!(" · {message}"));
                }
                let counts = self.counts.lock().expect("display poisoned");
                eprintln!("{} {line}", counts.prefix());
            }
            Mode::Quiet => {}
        }
    }

    fn finished(&self, report: &StageReport) {
        let failed = !report.action.succeeded();
        let mut was_running = false;
        match &self.mode {
            Mode::Terminal { multi, bars, .. } => {
                if let Some(bar) = bars.lock().expect("display poisoned").remove(&report.stage) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                    was_running = true;
                }
            }
            Mode::Plain { stages, .. } => {
                was_running = stages
                    .lock()
                    .expect("display poisoned")
                    .remove(&report.stage)
                    .is_some();
            }
            Mode::Quiet => {}
        }
        self.update(|c| {
            c.finished += 1;
            c.failed += usize::from(failed);
            c.running -= usize::from(was_running);
        });
        if self.lines {
            self.println(&report.line());
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Mode::Terminal { run, .. } = &self.mode {
            run.finish_and_clear();
        }
        self.flush();
    }
}

/// `12.3/s`, or `4.1 s each` below one a second (a slow training's steps).
fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1.0 => format!("{r:.1}/s"),
        r if r > 0.0 => format!("{:.1} s each", 1.0 / r),
        _ => "–/s".into(),
    }
}

/// `2h 05m`, `4m 12s`, `9s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_as_people_say_them() {
        assert_eq!(rate(12.34), "12.3/s");
        assert_eq!(rate(0.25), "4.0 s each");
        assert_eq!(rate(0.0), "–/s");
        assert_eq!(duration(9.4), "9s");
        assert_eq!(duration(252.0), "4m 12s");
        assert_eq!(duration(7500.0), "2h 05m");
    }
}
