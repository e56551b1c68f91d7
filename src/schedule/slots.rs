use std::collections::BTreeMap;

/// The run's GPUs, each with room for `per_gpu` stages at once (1 unless the user asks
/// for sharing), handed out to stages and taken back. A stage never gets the same GPU
/// twice, and a GPU never holds more stages than its room.
pub struct Slots {
    free: BTreeMap<u32, usize>,
}

impl Slots {
    pub fn new(ids: &[u32], per_gpu: usize) -> Slots {
        Slots {
            free: ids.iter().map(|&id| (id, per_gpu.max(1))).collect(),
        }
    }

    /// How many GPUs the run has (the most one stage can take).
    pub fn total(&self) -> usize {
        self.free.len()
    }

    /// `n` distinct GPUs, if that many have room: the emptiest first, then the lowest
    /// id, so that stages spread over the GPUs before they share one.
    pub fn take(&mut self, n: usize) -> Option<Vec<u32>> {
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
        for id in ids {
            *self.free.get_mut(&id).expect("an id of the run") += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_oversubscribed() {
        let mut slots = Slots::new(&[0, 1, 2], 1);
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
        let mut slots = Slots::new(&[0, 1], 2);
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
}
