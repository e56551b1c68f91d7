//! Running a pipeline: upstream first, `-j N` stages at once, GPU slots never
//! oversubscribed, failures stopping the run or only their dependents
//! (`--keep-going`), Ctrl-C stopping it cleanly.
//!
//! The scheduler plans each stage once its upstreams are done (their outputs are part
//! of its key), reuses a valid record when there is one, and otherwise hands the job to
//! an [`Executor`]. Only the control loop touches the run's state; workers report back
//! over a channel.

mod executor;
mod frontier;
mod job;
mod slots;
mod slurm;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use contract::Progress;

pub use executor::{
    ExecOutcome, Executor, InProcess, ProgressLine, ProgressReport, Subprocess, cores, exec_args,
    share_of_cores,
};
use frontier::Frontier;
pub use job::{ExecError, Executed, JOB_SCHEMA, Job};
pub use slots::Gpus;
use slots::Slots;
pub use slurm::{Poll, SlurmExecutor, SlurmJob, submitted_jobs};

use crate::digest::{Digest, StageKey};
use crate::pipeline::Pipeline;
use crate::plan::{PlanError, Planned, plan, previous, ready_key};
use crate::reason::{Reason, diff};
use crate::store::{Ahead, Completed, Lookahead, Store, StoreError, write_json};
use crate::summary::{Action, RunReport, StageReport};

pub struct Options {
    pub jobs: usize,
    /// The run's GPUs; a stage that asks for GPUs takes them from here.
    pub gpus: Gpus,
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
    let order = pipeline.ordered(selected);
    let (refs, ahead) = store.refs_looked_ahead(&pipeline.name, |refs| {
        order
            .iter()
            .filter_map(|&i| refs.stages.get(&pipeline.stages[i].name).copied())
            .collect()
    })?;
    let mut run = Run {
        pipeline,
        store,
        options,
        ahead,
        computed: false,
        refs,
        slots: (0..pipeline.stages.len()).map(|_| Slot::Pending).collect(),
        records: vec![None; pipeline.stages.len()],
        gpus: Slots::new(&options.gpus),
        stopping: false,
    };
    // Upstreams left out of the selection (`pipe run --only`) are read as recorded: the
    // record of their current key, if there is one.
    let outside: BTreeSet<usize> = order
        .iter()
        .flat_map(|&i| pipeline.upstream(i))
        .filter(|u| !selected.contains(u))
        .collect();
    if !outside.is_empty() {
        let states = crate::plan::states(pipeline, store)?;
        for u in outside {
            if let crate::plan::State::UpToDate { completed, .. } = &states[u] {
                run.records[u] = Some(completed.clone());
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Finished>();
    let mut running = 0usize;
    let mut frontier = Frontier::new(pipeline, &order);

    std::thread::scope(|scope| -> Result<(), StoreError> {
        loop {
            // Settle every stage that can be settled, start what may start, repeat
            // until nothing moves; then wait for a running stage to finish.
            let mut progressed = true;
            while progressed && !run.stopping && !cancel.load(Ordering::Relaxed) {
                progressed = false;
                for i in frontier.take_unprepared() {
                    if !matches!(run.slots[i], Slot::Pending) {
                        continue;
                    }
                    let next = run.prepare(i)?;
                    match &next {
                        Slot::Done(report) => {
                            observer.finished(report);
                            frontier.finished(i, report.action.succeeded());
                            progressed = true;
                        }
                        Slot::Ready(_) => {
                            frontier.prepared(i);
                            progressed = true;
                        }
                        // Waits on an upstream outside the run that has no record.
                        _ => {}
                    }
                    run.slots[i] = next;
                }
                let mut from = 0;
                while running < options.jobs
                    && let Some((position, i)) = frontier.next_ready(from)
                {
                    from = position + 1;
                    let Some((job, ids, report)) = run.start(i)? else {
                        continue;
                    };
                    frontier.started(i);
                    observer.started(&job.stage);
                    run.slots[i] = Slot::Running(Box::new(report));
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
            let index = done.index;
            let report = run.finish(done);
            frontier.finished(index, report.action.succeeded());
            // At once, not at the end: a run killed later (OOM, a reboot) must not leave
            // finished stages unreferenced, for `cache gc` keeps what refs name.
            if let (true, Some(key)) = (report.action.succeeded(), report.key) {
                store.append_ref(&pipeline.name, &report.stage, &key)?;
            }
            observer.finished(&report);
            run.slots[index] = Slot::Done(Box::new(report));
        }
    })?;
    let mut report = run.report(&order, clock, cancel.load(Ordering::Relaxed))?;
    report.scheduler_calls = executor.scheduler_calls();
    Ok(report)
}

/// The state of one run, owned by the control loop.
struct Run<'a> {
    pipeline: &'a Pipeline,
    store: &'a Store,
    options: &'a Options,
    /// The stages' last keys before this run, for reasons.
    refs: crate::store::Refs,
    /// Their lookups, done ahead.
    ahead: Lookahead,
    /// Whether a stage completed with a result the lookahead did not give.
    computed: bool,
    slots: Vec<Slot>,
    /// What each stage completed with in this run.
    records: Vec<Option<Completed>>,
    gpus: Slots,
    stopping: bool,
}

impl Run<'_> {
    /// Decides what a pending stage does next: wait for upstreams, be skipped, reuse
    /// its record, fail before running, or get ready to run.
    fn prepare(&mut self, i: usize) -> Result<Slot, StoreError> {
        let stage = &self.pipeline.stages[i];
        let ups = self.pipeline.upstream(i);
        let failed_up = ups
            .iter()
            .find(|&&u| matches!(&self.slots[u], Slot::Done(r) if !r.action.succeeded()));
        if let Some(&bad) = failed_up {
            let mut report = StageReport::new(&stage.name, Action::Skipped);
            report.error = Some(format!(
                "upstream `{}` did not complete",
                self.pipeline.stages[bad].name
            ));
            return Ok(Slot::Done(Box::new(report)));
        }
        if ups.iter().any(|&u| self.records[u].is_none()) {
            return Ok(Slot::Pending);
        }
        let forced = self.options.force.contains(&i);
        // A stage up to date, nearly every stage of a rerun, is answered from its key
        // alone; the rest is planned in full, to run it and say why.
        let mut answer = None;
        if !forced && let Some(key) = ready_key(self.pipeline, self.store, i, &self.records)? {
            match self.ahead.lookup(self.store, &key)? {
                Ahead::Hit(completed) => return Ok(self.cached(i, completed)),
                other => answer = Some(other),
            }
        }
        let planned = match plan(self.pipeline, self.store, i, &self.records) {
            Ok(planned) => planned,
            Err(PlanError::Store(e)) => return Err(e),
            Err(PlanError::Input(d)) => {
                let report = StageReport::new(&stage.name, Action::Failed);
                let message = self.pipeline.render(&d);
                return Ok(Slot::Done(Box::new(self.fail(report, message.trim_end()))));
            }
        };
        let reasons = if forced {
            vec![Reason::Forced]
        } else {
            let answer = match answer {
                Some(answer) => answer,
                None => self.ahead.lookup(self.store, &planned.key)?,
            };
            match answer {
                Ahead::Hit(completed) => return Ok(self.cached(i, completed)),
                Ahead::Damaged(why) => vec![Reason::OutputDamaged { detail: why }],
                Ahead::Miss => match previous(self.store, &self.refs, &stage.name)? {
                    Some(old) => diff(&old, &planned),
                    None => vec![Reason::NeverRun],
                },
            }
        };
        if let Err(needed) = stage.gpus.slots(self.gpus.total()) {
            let mut report = StageReport::new(&stage.name, Action::Failed);
            report.key = Some(planned.key);
            let given = self.gpus.total();
            let message = match self.options.gpus {
                Gpus::Local { .. } => format!(
                    "needs {needed} GPU(s) but {given} given; list GPU ids with --gpus, e.g. --gpus 0,1"
                ),
                Gpus::Cluster { .. } => format!(
                    "needs {needed} GPU(s) but the cluster's nodes have {given} (sinfo's generic resources); choose a partition with GPUs (--partition)"
                ),
            };
            return Ok(Slot::Done(Box::new(self.fail(report, &message))));
        }
        Ok(Slot::Ready(Box::new((planned, reasons))))
    }

    /// Stage `i` reuses the result it `completed` with.
    fn cached(&mut self, i: usize, completed: Completed) -> Slot {
        let mut report = StageReport::new(&self.pipeline.stages[i].name, Action::Cached);
        fill_from(&mut report, &completed, self.store);
        self.records[i] = Some(completed);
        Slot::Done(Box::new(report))
    }

    /// Marks a report failed; the run stops starting stages unless `--keep-going`.
    fn fail(&mut self, mut report: StageReport, error: &str) -> StageReport {
        report.action = Action::Failed;
        report.error = Some(error.to_string());
        self.stopping |= !self.options.keep_going;
        report
    }

    /// Takes a ready stage's GPUs and writes its job, if it is ready and they are free.
    fn start(&mut self, i: usize) -> Result<Option<(Job, Vec<u32>, StageReport)>, StoreError> {
        if !matches!(self.slots[i], Slot::Ready(_)) {
            return Ok(None);
        }
        let wanted = self.pipeline.stages[i].gpus.slots(self.gpus.total());
        let Some(ids) = self
            .gpus
            .take(wanted.expect("checked when it became ready"))
        else {
            return Ok(None);
        };
        let Slot::Ready(ready) = std::mem::replace(&mut self.slots[i], Slot::Pending) else {
            unreachable!("matched above")
        };
        let (planned, reasons) = *ready;
        let job = Job::new(self.pipeline, i, planned, self.options.force.contains(&i));
        write_json(&self.store.job_path(&job.key), &job)?;
        let mut report = StageReport::new(&job.stage, Action::Ran);
        report.key = Some(job.key);
        report.reasons = reasons;
        Ok(Some((job, ids, report)))
    }

    /// Folds a finished execution into its stage's report.
    fn finish(&mut self, done: Finished) -> StageReport {
        self.gpus.give_back(done.gpus.clone());
        let Slot::Running(report) = std::mem::replace(&mut self.slots[done.index], Slot::Pending)
        else {
            unreachable!("only running stages report back")
        };
        let mut report = *report;
        report.gpus = done.gpus;
        report.duration_s = Some(done.seconds);
        let record = match done.result {
            Ok(Executed::Ran(record)) => record,
            Ok(Executed::Reused(record)) => {
                report.action = Action::Reused;
                record
            }
            Ok(Executed::Pulled(record)) => {
                report.action = Action::Pulled;
                record
            }
            Err(ExecError::Cancelled) => {
                report.action = Action::Interrupted;
                return report;
            }
            Err(ExecError::Stopped { message, log }) => {
                report.action = Action::Interrupted;
                report.error = Some(message);
                report.log = log;
                return report;
            }
            Err(ExecError::Failed { message, log }) => {
                report.log = log;
                return self.fail(report, &message);
            }
            Err(ExecError::Store(e)) => {
                return self.fail(report, &e.to_string());
            }
        };
        let completed = Completed::from(&*record);
        fill_from(&mut report, &completed, self.store);
        self.records[done.index] = Some(completed);
        self.computed = true;
        report
    }

    /// The run's report in pipeline order; points the stages that completed at their
    /// keys for `why`, `status` and `gc`.
    fn report(
        mut self,
        order: &[usize],
        clock: Instant,
        interrupted: bool,
    ) -> Result<RunReport, StoreError> {
        let mut reports = Vec::new();
        let mut refs_update: BTreeMap<String, Digest<StageKey>> = BTreeMap::new();
        let mut incomplete = BTreeSet::new();
        for &i in order {
            let name = &self.pipeline.stages[i].name;
            let report = match std::mem::replace(&mut self.slots[i], Slot::Pending) {
                Slot::Done(report) => *report,
                _ => match self
                    .pipeline
                    .upstream(i)
                    .into_iter()
                    .find(|u| incomplete.contains(u))
                {
                    Some(u) => {
                        let mut report = StageReport::new(name, Action::Skipped);
                        report.error = Some(format!(
                            "upstream `{}` did not complete",
                            self.pipeline.stages[u].name
                        ));
                        report
                    }
                    None => {
                        let mut report = StageReport::new(name, Action::NotRun);
                        let why = if interrupted {
                            "interrupted before it started"
                        } else {
                            "the run stopped after a failure"
                        };
                        report.error = Some(why.into());
                        report
                    }
                },
            };
            if !report.action.succeeded() {
                incomplete.insert(i);
            } else if let Some(key) = report.key {
                refs_update.insert(report.stage.clone(), key);
            }
            reports.push(report);
        }
        self.store.update_refs(&self.pipeline.name, &refs_update)?;
        if self.computed || self.ahead.index_lacked_a_hit() {
            let completed = order.iter().filter_map(|&i| self.records[i].as_ref());
            self.store.write_index(&self.pipeline.name, completed)?;
        }
        self.store.save()?;
        Ok(RunReport::new(
            &self.pipeline.name,
            reports,
            clock.elapsed().as_secs_f64(),
            interrupted,
        ))
    }
}

fn fill_from(report: &mut StageReport, completed: &Completed, store: &Store) {
    report.key = Some(completed.key);
    report.output = Some(store.tree_path(&completed.output));
    report.metrics = completed.metrics.clone();
}
