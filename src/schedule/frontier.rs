//! Which stages the scheduler looks at next: those whose upstreams in the run have all
//! finished (or one of which failed, to skip them), and those prepared and waiting for
//! a job slot or GPUs, each in the pipeline's order. Scanning every stage after every
//! event made the first run of a 100,000-stage chain quadratic.

use std::collections::BTreeSet;

use crate::pipeline::Pipeline;

pub(super) struct Frontier {
    /// Stage → its position in the run's order (`usize::MAX` outside the run).
    position: Vec<usize>,
    order: Vec<usize>,
    /// Stage → upstreams in the run not finished yet.
    waiting: Vec<usize>,
    /// Stage → the stages of the run that read it.
    below: Vec<Vec<usize>>,
    /// Positions of stages to prepare.
    unprepared: BTreeSet<usize>,
    /// Positions of stages prepared and not started.
    ready: BTreeSet<usize>,
}

impl Frontier {
    pub(super) fn new(pipeline: &Pipeline, order: &[usize]) -> Frontier {
        let n = pipeline.stages.len();
        let mut position = vec![usize::MAX; n];
        for (p, &i) in order.iter().enumerate() {
            position[i] = p;
        }
        let mut waiting = vec![0; n];
        let mut below = vec![Vec::new(); n];
        for &i in order {
            for u in pipeline.upstream(i) {
                if position[u] != usize::MAX {
                    waiting[i] += 1;
                    below[u].push(i);
                }
            }
        }
        let unprepared = order
            .iter()
            .filter(|&&i| waiting[i] == 0)
            .map(|&i| position[i])
            .collect();
        Frontier {
            position,
            order: order.to_vec(),
            waiting,
            below,
            unprepared,
            ready: BTreeSet::new(),
        }
    }

    /// The stages to prepare now, in order; each is handed out once per time it
    /// becomes due.
    pub(super) fn take_unprepared(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.unprepared)
            .into_iter()
            .map(|p| self.order[p])
            .collect()
    }

    pub(super) fn prepared(&mut self, stage: usize) {
        self.ready.insert(self.position[stage]);
    }

    /// The first ready stage after position `from`, with its position.
    pub(super) fn next_ready(&self, from: usize) -> Option<(usize, usize)> {
        let &p = self.ready.range(from..).next()?;
        Some((p, self.order[p]))
    }

    pub(super) fn started(&mut self, stage: usize) {
        self.ready.remove(&self.position[stage]);
    }

    /// A stage finished: the stages reading it are due once nothing else holds them,
    /// or at once if it failed (to be skipped).
    pub(super) fn finished(&mut self, stage: usize, succeeded: bool) {
        for &d in &self.below[stage] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 || !succeeded {
                self.unprepared.insert(self.position[d]);
            }
        }
    }
}
