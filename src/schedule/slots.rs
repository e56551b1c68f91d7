use std::collections::BTreeMap;

/// The GPUs a run gives its stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gpus {
    /// This machine's GPUs by id, each running up to `per_gpu` stages at once (1 unless
    /// the user asks for sharing).
    Local { ids: Vec<u32>, per_gpu: usize },
    /// GPUs a cluster allocates to each stage's job, up to `per_node` for one stage.
    /// The cluster queues jobs, so nothing waits here; a stage sees its GPUs as 0..n.
    Cluster { per_node: usize },
}

impl Gpus {
    /// No GPU at all: everything runs on the CPU.
    pub fn none() -> Gpus {
        Gpus::Local {
            ids: Vec::new(),
            per_gpu: 1,
        }
    }
}

/// The run's GPUs handed out to stages and taken back. On a local machine a stage never
/// gets the same GPU twice, and a GPU never holds more stages than its room.
pub struct Slots {
    free: BTreeMap<u32, usize>,
    /// `Some(per_node)` for a cluster's GPUs.
    cluster: Option<usize>,
}

impl Slots {
    pub fn new(gpus: &Gpus) -> Slots {
        match gpus {
            Gpus::Local { ids, per_gpu } => Slots {
                free: ids.iter().map(|&id| (id, (*per_gpu).max(1))).collect(),
                cluster: None,
            },
            Gpus::Cluster { per_node } => Slots {
                free: BTreeMap::new(),
                cluster: Some(*per_node),
            },
        }
    }

    /// How many GPUs the run has (the most one stage can take).
    pub fn total(&self) -> usize {
        self.cluster.unwrap_or(self.free.len())
    }

    /// `n` distinct GPUs, if that many have room: the emptiest first, then the lowest
    /// id, so that stages spread over the GPUs before they share one. A cluster's are
    /// always there, numbered as the stage's job will see them.
    pub fn take(&mut self, n: usize) -> Option<Vec<u32>> {
        if let Some(per_node) = self.cluster {
            return (n <= per_node).then(|| (0..n as u32).collect());
        }
        let mut open: Vec<(usize, u32)> = self
            .free
            .iter()
            .filter(|&(_, &room)| room > 0)
            .map(|(&id, &room)| (room, id))
            .collect();
        if open.len() < n {
            return None;
        }
        open.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut taken: Vec<u32> = open[..n].iter().map(|&(_, id)| id).collect();
        taken.sort_unstable();
        for id in &taken {
            *self.free.get_mut(id).expect("an id of the run") -= 1;
        }
        Some(taken)
    }

    pub fn give_back(&mut self, ids: Vec<u32>) {
        if self.cluster.is_some() {
            return;
        }
        for id in ids {
            *self.free.get_mut(&id).expect("an id of the run") += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(ids: &[u32], per_gpu: usize) -> Slots {
        Slots::new(&Gpus::Local {
            ids: ids.to_vec(),
            per_gpu,
        })
    }

    #[test]
    fn never_oversubscribed() {
        let mut slots = local(&[0, 1, 2], 1);
        let a = slots.take(2).unwrap();
        assert_eq!(a, [0, 1]);
        assert_eq!(slots.take(2), None);
        let b = slots.take(1).unwrap();
        assert_eq!(b, [2]);
        assert_eq!(slots.take(1), None);
        slots.give_back(a);
        assert_eq!(slots.take(2).unwrap(), [0, 1]);
        assert_eq!(slots.take(0).unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn shared_gpus_fill_evenly_and_never_twice_for_one_stage() {
        let mut slots = local(&[0, 1], 2);
        assert_eq!(slots.total(), 2);
        let taken: Vec<Vec<u32>> = (0..4).map(|_| slots.take(1).unwrap()).collect();
        assert_eq!(taken, [vec![0], vec![1], vec![0], vec![1]]);
        assert_eq!(slots.take(1), None);
        slots.give_back(vec![1]);
        assert_eq!(
            slots.take(2),
            None,
            "one GPU has room, a stage needs two distinct"
        );
        assert_eq!(slots.take(1).unwrap(), [1]);
    }

    #[test]
    fn a_cluster_never_makes_a_stage_wait_and_numbers_gpus_from_zero() {
        let mut slots = Slots::new(&Gpus::Cluster { per_node: 4 });
        assert_eq!(slots.total(), 4);
        for _ in 0..100 {
            assert_eq!(slots.take(2).unwrap(), [0, 1]);
        }
        assert_eq!(slots.take(5), None, "more than a node has");
        slots.give_back(vec![0, 1]);
        assert_eq!(Slots::new(&Gpus::none()).total(), 0);
    }
}
