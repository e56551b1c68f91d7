//! Running a pipeline: upstream first, `-j N` stages at once, GPU slots never
//! oversubscribed, failures stopping the run or only their dependents
//! (`--keep-going`), Ctrl-C stopping it cleanly.
//!
//! The scheduler plans each stage once its upstreams are done (their outputs are part
//! of its key), reuses a valid record when there is one, and otherwise hands the job to
//! an [`Executor`]. Only the control loop touches the run's state; workers report back
//! over a channel.

mod executor;
mod job;
mod slots;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use stages::Progress;

pub use executor::{Executor, InProcess, Subprocess};
pub use job::{ExecError, Executed, JOB_SCHEMA, Job};
use slots::Slots;

use crate::digest::{Digest, StageKey};
use crate::pipeline::Pipeline;
use crate::plan::{PlanError, Planned, plan, previous};
use crate::reason::{Reason, diff};
use crate::store::{Lookup, Record, Store, StoreError, write_json};
use crate::summary::{Action, RunReport, StageReport};

pub struct Options {
    pub jobs: usize,
    pub gpus: Vec<u32>,
    pub keep_going: bool,
    /// Stages to run even if cached.
    pub force: BTreeSet<usize>,
}

/// What a live display hears about.
pub trait Observer: Sync {
    fn started(&self, stage: &str);
    fn progress(&self, stage: &str, done: u64, total: Option<u64>, message: &str);
    fn finished(&self, report: &StageReport);
}

struct StageProgress<'a> {
    observer: &'a dyn Observer,
    stage: &'a str,
}

impl Progress for StageProgress<'_> {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        self.observer.progress(self.stage, done, total, message)
    }
}

enum Slot {
    Pending,
    /// Planned and due to run, waiting for a job slot or GPUs.
    Ready(Box<(Planned, Vec<Reason>)>),
    Running(Box<StageReport>),
    Done(Box<StageReport>),
}

struct Finished {
    index: usize,
    gpus: Vec<u32>,
    result: Result<Executed, ExecError>,
    seconds: f64,
}

/// Runs the `selected` stages of a pipeline (with everything they need already in
/// `selected`).
pub fn run(
    pipeline: &Pipeline,
    store: &Store,
    executor: &dyn Executor,
    options: &Options,
    selected: &BTreeSet<usize>,
    observer: &dyn Observer,
    cancel: &AtomicBool,
) -> Result<RunReport, StoreError> {
    let clock = Instant::now();
    let _shared = store.hold_shared()?;
    store.clean_tmp()?;
    let refs = store.refs(&pipeline.name)?;
    let order: Vec<usize> = pipeline
        .order
        .iter()
        .copied()
        .filter(|i| selected.contains(i))
        .collect();
    let mut slots: Vec<Slot> = (0..pipeline.stages.len()).map(|_| Slot::Pending).collect();
    let mut records: Vec<Option<Record>> = vec![None; pipeline.stages.len()];
    let mut gpus = Slots::new(&options.gpus);
    let mut running = 0usize;
    let mut stopping = false;
    let (tx, rx) = mpsc::channel::<Finished>();

    std::thread::scope(|scope| -> Result<(), StoreError> {
        loop {
            let mut progressed = true;
            while progressed && !stopping && !cancel.load(Ordering::Relaxed) {
                progressed = false;
                for &i in &order {
                    let stage = &pipeline.stages[i];
                    let finish = |slot: &mut Slot, report: StageReport| {
                        observer.finished(&report);
                        *slot = Slot::Done(Box::new(report));
                    };
                    if matches!(slots[i], Slot::Pending) {
                        let ups = pipeline.upstream(i);
                        let failed_up = ups.iter().find(
                            |&&u| matches!(&slots[u], Slot::Done(r) if !r.action.succeeded()),
                        );
                        if let Some(&bad) = failed_up {
                            let mut report = StageReport::new(&stage.name, Action::Skipped);
                            report.error = Some(format!(
                                "upstream `{}` did not complete",
                                pipeline.stages[bad].name
                            ));
                            finish(&mut slots[i], report);
                            progressed = true;
                            continue;
                        }
                        if ups.iter().any(|&u| records[u].is_none()) {
                            continue;
                        }
                        progressed = true;
                        let planned = match plan(pipeline, store, i, &|u| records[u].clone()) {
                            Ok(planned) => planned,
                            Err(PlanError::Store(e)) => return Err(e),
                            Err(PlanError::Input(d)) => {
                                let mut report = StageReport::new(&stage.name, Action::Failed);
                                report.error = Some(pipeline.render(&d).trim_end().to_string());
                                finish(&mut slots[i], report);
                                stopping |= !options.keep_going;
                                continue;
                            }
                        };
                        let reasons = if options.force.contains(&i) {
                            vec![Reason::Forced]
                        } else {
                            match store.lookup(&planned.key)? {
                                Lookup::Hit(record) => {
                                    finish(
                                        &mut slots[i],
                                        cached_report(&stage.name, &record, store),
                                    );
                                    records[i] = Some(*record);
                                    continue;
                                }
                                Lookup::Damaged { why, .. } => {
                                    vec![Reason::OutputDamaged { detail: why }]
                                }
                                Lookup::Miss => match previous(store, &refs, &stage.name)? {
                                    Some(old) => diff(&old, &planned),
                                    None => vec![Reason::NeverRun],
                                },
                            }
                        };
                        let needed = stage.declaration.gpus as usize;
                        if needed > gpus.total() {
                            let mut report = StageReport::new(&stage.name, Action::Failed);
                            report.key = Some(planned.key);
                            report.error = Some(format!(
                                "needs {needed} GPU(s) but {} given; list GPU ids with --gpus, e.g. --gpus 0,1",
                                gpus.total()
                            ));
                            finish(&mut slots[i], report);
                            stopping |= !options.keep_going;
                            continue;
                        }
                        slots[i] = Slot::Ready(Box::new((planned, reasons)));
                    }
                    if !matches!(slots[i], Slot::Ready(_)) || running >= options.jobs {
                        continue;
                    }
                    let Some(ids) = gpus.take(stage.declaration.gpus as usize) else {
                        continue;
                    };
                    let Slot::Ready(ready) = std::mem::replace(&mut slots[i], Slot::Pending) else {
                        unreachable!("matched above")
                    };
                    let (planned, reasons) = *ready;
                    let job = Job::new(pipeline, i, planned, options.force.contains(&i));
                    write_json(&store.job_path(&job.key), &job)?;
                    let mut report = StageReport::new(&stage.name, Action::Ran);
                    report.key = Some(job.key);
                    report.reasons = reasons;
                    slots[i] = Slot::Running(Box::new(report));
                    observer.started(&stage.name);
                    running += 1;
                    progressed = true;
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let progress = StageProgress {
                            observer,
                            stage: &job.stage,
                        };
                        let clock = Instant::now();
                        let result = executor.execute(&job, &ids, &progress);
                        let seconds = clock.elapsed().as_secs_f64();
                        let _ = tx.send(Finished {
                            index: i,
                            gpus: ids,
                            result,
                            seconds,
                        });
                    });
                }
            }
            if running == 0 {
                return Ok(());
            }
            let done = rx.recv().expect("workers hold a sender while running");
            running -= 1;
            gpus.give_back(done.gpus.clone());
            let Slot::Running(mut report) =
                std::mem::replace(&mut slots[done.index], Slot::Pending)
            else {
                unreachable!("only running stages report back")
            };
            report.gpus = done.gpus;
            report.duration_s = Some(done.seconds);
            match done.result {
                Ok(Executed::Ran(record)) => {
                    fill_from_record(&mut report, &record, store);
                    records[done.index] = Some(*record);
                }
                Ok(Executed::Reused(record)) => {
                    report.action = Action::Reused;
                    fill_from_record(&mut report, &record, store);
                    records[done.index] = Some(*record);
                }
                Err(ExecError::Cancelled) => report.action = Action::Interrupted,
                Err(ExecError::Failed { message, log }) => {
                    report.action = Action::Failed;
                    report.error = Some(message);
                    report.log = log;
                    stopping |= !options.keep_going;
                }
                Err(ExecError::Store(e)) => {
                    report.action = Action::Failed;
                    report.error = Some(e.to_string());
                    stopping |= !options.keep_going;
                }
            }
            observer.finished(&report);
            slots[done.index] = Slot::Done(report);
        }
    })?;

    let interrupted = cancel.load(Ordering::Relaxed);
    let mut reports = Vec::new();
    let mut refs_update: BTreeMap<String, Digest<StageKey>> = BTreeMap::new();
    let mut incomplete = BTreeSet::new();
    for &i in &order {
        let report = match std::mem::replace(&mut slots[i], Slot::Pending) {
            Slot::Done(report) => *report,
            _ => {
                let failed_up = pipeline
                    .upstream(i)
                    .into_iter()
                    .find(|u| incomplete.contains(u));
                match failed_up {
                    Some(u) => {
                        let mut report =
                            StageReport::new(&pipeline.stages[i].name, Action::Skipped);
                        report.error = Some(format!(
                            "upstream `{}` did not complete",
                            pipeline.stages[u].name
                        ));
                        report
                    }
                    None => {
                        let mut report = StageReport::new(&pipeline.stages[i].name, Action::NotRun);
                        let why = if interrupted {
                            "interrupted before it started"
                        } else {
                            "the run stopped after a failure"
                        };
                        report.error = Some(why.into());
                        report
                    }
                }
            }
        };
        if !report.action.succeeded() {
            incomplete.insert(i);
        }
        if let (true, Some(key)) = (report.action.succeeded(), report.key) {
            refs_update.insert(report.stage.clone(), key);
        }
        reports.push(report);
    }
    store.update_refs(&pipeline.name, &refs_update)?;
    store.save()?;
    Ok(RunReport::new(
        &pipeline.name,
        reports,
        clock.elapsed().as_secs_f64(),
        interrupted,
    ))
}

fn cached_report(stage: &str, record: &Record, store: &Store) -> StageReport {
    let mut report = StageReport::new(stage, Action::Cached);
    fill_from_record(&mut report, record, store);
    report
}

fn fill_from_record(report: &mut StageReport, record: &Record, store: &Store) {
    report.key = Some(record.key);
    report.output = Some(store.tree_path(&record.output));
    report.metrics = record.metrics.clone();
}
