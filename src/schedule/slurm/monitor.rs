//! Watching Slurm jobs politely: one `squeue` call per interval for every job the run
//! waits for, the interval growing while nothing changes and short again when
//! something does; on Ctrl-C one `scancel` for every job the run submitted.
//!
//! The threads that wait for jobs share one [`Monitor`]: whichever finds a poll due
//! makes it, for all of them, and wakes the others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::slurm::{JobId, Queued, Slurm};

/// How often to ask: from `min` after a change, growing half again per quiet poll up
/// to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub min: Duration,
    pub max: Duration,
}

impl Poll {
    /// Every 2 s after a change, up to a minute.
    pub const DEFAULT: Poll = Poll {
        min: Duration::from_secs(2),
        max: Duration::from_secs(60),
    };

    /// `min` seconds, and up to 30 times that.
    pub fn from_min(seconds: f64) -> Poll {
        let min = Duration::from_secs_f64(seconds.max(0.01));
        Poll { min, max: min * 30 }
    }
}

/// How long a waiting thread sleeps at most between two looks at what its job left in
/// the store: a quarter second, longer when many jobs run (each look is a file system
/// call on a shared store).
fn look_every(jobs: usize) -> Duration {
    Duration::from_millis((jobs as u64 * 5).clamp(250, 2000))
}
/// `squeue` failures in a row after which the run stops waiting for its jobs.
const FAILURES_TOLERATED: u32 = 20;
/// How long cancelled jobs may take to end before the run stops waiting for them.
const CANCEL_GRACE: Duration = Duration::from_secs(120);

/// How the wait for a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// `squeue` listed it in a final state.
    Ended(Queued),
    /// The controller stopped listing it; the last state seen, if any.
    Gone(Option<Queued>),
    /// The job said so itself (its script left exit code 0 in the store).
    Reported,
    /// `squeue` kept failing; its last error.
    Unknown(String),
    /// This run was interrupted and stopped waiting (the job is not its own, or it
    /// did not end within the grace after `scancel`).
    Abandoned,
}

struct Watched {
    /// Submitted by this run (cancelled on Ctrl-C), not adopted from another.
    ours: bool,
    seen: Option<Queued>,
    unlisted: u8,
    /// Polls in a row that showed a final state that may turn into a requeue.
    final_polls: u8,
    end: Option<End>,
}

struct Watch {
    jobs: BTreeMap<JobId, Watched>,
    interval: Duration,
    next: Instant,
    polling: bool,
    failures: u32,
    /// When `scancel` went out for this run's jobs.
    cancelled_at: Option<Instant>,
}

pub struct Monitor<'a> {
    slurm: Slurm,
    poll: Poll,
    cancel: &'a AtomicBool,
    watch: Mutex<Watch>,
    changed: Condvar,
}

impl<'a> Monitor<'a> {
    pub fn new(slurm: Slurm, poll: Poll, cancel: &'a AtomicBool) -> Monitor<'a> {
        Monitor {
            slurm,
            poll,
            cancel,
            watch: Mutex::new(Watch {
                jobs: BTreeMap::new(),
                interval: poll.min,
                next: Instant::now() + poll.min,
                polling: false,
                failures: 0,
                cancelled_at: None,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn slurm(&self) -> &Slurm {
        &self.slurm
    }

    fn lock(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().expect("monitor poisoned")
    }

    /// Starts watching a job; a new job makes the next polls come sooner.
    pub fn watch(&self, id: JobId, ours: bool) {
        let mut watch = self.lock();
        watch.jobs.insert(
            id,
            Watched {
                ours,
                seen: None,
                unlisted: 0,
                final_polls: 0,
                end: None,
            },
        );
        watch.interval = self.poll.min;
        let soon = Instant::now() + self.poll.min;
        watch.next = watch.next.min(soon);
    }

    /// Waits until the job ends, calling `look` with its last known state after every
    /// poll and every [`look_every`] between polls; `look` returns true when the job
    /// reported its own success, which ends the wait at once.
    pub fn wait(&self, id: JobId, mut look: impl FnMut(Option<&Queued>) -> bool) -> End {
        let mut watch = self.lock();
        loop {
            let job = watch.jobs.get_mut(&id).expect("a watched job");
            if let Some(end) = job.end.take() {
                watch.jobs.remove(&id);
                return end;
            }
            let ours = job.ours;
            if self.cancel.load(Ordering::Relaxed) {
                if !ours {
                    watch.jobs.remove(&id);
                    return End::Abandoned;
                }
                match watch.cancelled_at {
                    None => {
                        watch = self.cancel_ours(watch);
                        continue;
                    }
                    Some(at) if at.elapsed() > CANCEL_GRACE => {
                        watch.jobs.remove(&id);
                        return End::Abandoned;
                    }
                    Some(_) => {}
                }
            }
            let now = Instant::now();
            if !watch.polling && now >= watch.next {
                watch = self.poll_all(watch);
            } else {
                let until = watch
                    .next
                    .saturating_duration_since(now)
                    .min(look_every(watch.jobs.len()));
                watch = self
                    .changed
                    .wait_timeout(watch, until.max(Duration::from_millis(10)))
                    .expect("monitor poisoned")
                    .0;
            }
            let seen = watch.jobs.get(&id).and_then(|j| j.seen.clone());
            drop(watch);
            let reported = look(seen.as_ref());
            watch = self.lock();
            if reported {
                watch.jobs.remove(&id);
                return End::Reported;
            }
        }
    }

    /// One `scancel` for every job of this run that has not ended; polls soon after.
    fn cancel_ours<'g>(&'g self, mut watch: MutexGuard<'g, Watch>) -> MutexGuard<'g, Watch> {
        watch.cancelled_at = Some(Instant::now());
        let ids: Vec<JobId> = watch
            .jobs
            .iter()
            .filter(|(_, j)| j.ours && j.end.is_none())
            .map(|(&id, _)| id)
            .collect();
        drop(watch);
        if let Err(e) = self.slurm.cancel(&ids) {
            tracing::warn!("cancelling this run's Slurm jobs: {e}");
        }
        let mut watch = self.lock();
        watch.interval = self.poll.min;
        watch.next = Instant::now() + self.poll.min;
        watch
    }

    /// One `squeue` for every watched job; wakes every waiting thread.
    fn poll_all<'g>(&'g self, mut watch: MutexGuard<'g, Watch>) -> MutexGuard<'g, Watch> {
        watch.polling = true;
        let ids: Vec<JobId> = watch
            .jobs
            .iter()
            .filter(|(_, j)| j.end.is_none())
            .map(|(&id, _)| id)
            .collect();
        drop(watch);
        let answer = self.slurm.queue(&ids);
        let mut watch = self.lock();
        watch.polling = false;
        let changed = watch.apply(&ids, answer);
        watch.interval = if changed {
            self.poll.min
        } else {
            (watch.interval * 3 / 2).min(self.poll.max)
        };
        watch.next = Instant::now() + watch.interval;
        self.changed.notify_all();
        watch
    }
}

impl Watch {
    /// Folds one `squeue` answer in; whether anything changed.
    fn apply(
        &mut self,
        ids: &[JobId],
        answer: Result<BTreeMap<JobId, Queued>, ::slurm::SlurmError>,
    ) -> bool {
        let listed = match answer {
            Ok(listed) => {
                self.failures = 0;
                listed
            }
            Err(e) => {
                self.failures += 1;
                tracing::warn!("asking Slurm for the jobs' states: {e}");
                if self.failures >= FAILURES_TOLERATED {
                    for job in self.jobs.values_mut().filter(|j| j.end.is_none()) {
                        job.end = Some(End::Unknown(e.to_string()));
                    }
                    return true;
                }
                return false;
            }
        };
        let mut changed = false;
        for id in ids {
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            match listed.get(id) {
                Some(queued) => {
                    changed |= job.seen.as_ref() != Some(queued);
                    job.unlisted = 0;
                    job.seen = Some(queued.clone());
                    if !queued.state.is_final() {
                        job.final_polls = 0;
                        continue;
                    }
                    job.final_polls += 1;
                    if !queued.state.may_requeue() || job.final_polls >= 2 {
                        job.end = Some(End::Ended(queued.clone()));
                    }
                }
                // Twice in a row: a controller may answer before a new job is listed.
                None => {
                    job.unlisted += 1;
                    if job.unlisted >= 2 {
                        job.end = Some(End::Gone(job.seen.clone()));
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::slurm::JobState;

    fn watch_of(ids: &[u64]) -> Watch {
        Watch {
            jobs: ids
                .iter()
                .map(|&i| {
                    let watched = Watched {
                        ours: true,
                        seen: None,
                        unlisted: 0,
                        final_polls: 0,
                        end: None,
                    };
                    (JobId(i), watched)
                })
                .collect(),
            interval: Duration::from_secs(1),
            next: Instant::now(),
            polling: false,
            failures: 0,
            cancelled_at: None,
        }
    }

    fn queued(state: JobState) -> Queued {
        Queued {
            state,
            reason: "None".into(),
        }
    }

    #[test]
    fn final_states_end_a_wait_and_requeueable_ones_only_when_seen_twice() {
        let ids = [JobId(1), JobId(2), JobId(3)];
        let mut watch = watch_of(&[1, 2, 3]);
        let answer = BTreeMap::from([
            (JobId(1), queued(JobState::Running)),
            (JobId(2), queued(JobState::Timeout)),
            (JobId(3), queued(JobState::Preempted)),
        ]);
        assert!(watch.apply(&ids, Ok(answer.clone())));
        assert_eq!(watch.jobs[&JobId(1)].end, None);
        assert_eq!(
            watch.jobs[&JobId(2)].end,
            Some(End::Ended(queued(JobState::Timeout)))
        );
        assert_eq!(watch.jobs[&JobId(3)].end, None, "may still be requeued");
        assert!(!watch.apply(&ids, Ok(answer)), "nothing changed");
        assert_eq!(
            watch.jobs[&JobId(3)].end,
            Some(End::Ended(queued(JobState::Preempted)))
        );
    }

    #[test]
    fn a_job_gone_from_the_queue_ends_after_two_polls() {
        let ids = [JobId(7)];
        let mut watch = watch_of(&[7]);
        let running = BTreeMap::from([(JobId(7), queued(JobState::Running))]);
        watch.apply(&ids, Ok(running));
        watch.apply(&ids, Ok(BTreeMap::new()));
        assert_eq!(watch.jobs[&JobId(7)].end, None);
        watch.apply(&ids, Ok(BTreeMap::new()));
        assert_eq!(
            watch.jobs[&JobId(7)].end,
            Some(End::Gone(Some(queued(JobState::Running))))
        );
    }

    #[test]
    fn squeue_failing_for_long_ends_every_wait() {
        let ids = [JobId(1)];
        let mut watch = watch_of(&[1]);
        let error = || {
            Err(::slurm::SlurmError::TimedOut {
                command: "squeue".into(),
                seconds: 60,
            })
        };
        for _ in 1..FAILURES_TOLERATED {
            assert!(!watch.apply(&ids, error()));
        }
        assert!(watch.apply(&ids, error()));
        assert!(matches!(watch.jobs[&JobId(1)].end, Some(End::Unknown(_))));
    }
}
