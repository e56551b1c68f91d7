/// GPU ids given with `--gpus`, handed out to stages and taken back, never twice at once.
pub struct Slots {
    free: Vec<u32>,
    total: usize,
}

impl Slots {
    pub fn new(ids: &[u32]) -> Slots {
        Slots {
            free: ids.iter().rev().copied().collect(),
            total: ids.len(),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// `n` ids, lowest first, if that many are free.
    pub fn take(&mut self, n: usize) -> Option<Vec<u32>> {
        if n > self.free.len() {
            return None;
        }
        let at = self.free.len() - n;
        let mut taken = self.free.split_off(at);
        taken.reverse();
        Some(taken)
    }

    pub fn give_back(&mut self, ids: Vec<u32>) {
        self.free.extend(ids);
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_oversubscribed() {
        let mut slots = Slots::new(&[0, 1, 2]);
        let a = slots.take(2).unwrap();
        assert_eq!(a, [0, 1]);
        assert_eq!(slots.take(2), None);
        let b = slots.take(1).unwrap();
        assert_eq!(b, [2]);
        slots.give_back(a);
        assert_eq!(slots.take(2).unwrap(), [0, 1]);
        assert_eq!(slots.take(0).unwrap(), Vec::<u32>::new());
    }
}
