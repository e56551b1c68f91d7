//! Data parallelism as the authors' code has it (`nn.DataParallel` at 67e0de0, with
//! their synchronized BatchNorm when `sync_bn` is on): each sub-step's batch is split in
//! order over the devices, each device runs the networks on its shard with a replica of
//! the weights, and the outputs are gathered on the first device. There the loss is
//! computed on the whole batch (ContraGAN's 2C loss sees every sample, not a shard's),
//! and one backward pass sums every shard's gradient into the weights on the first
//! device, which one optimizer updates: every device starts each step from identical
//! weights.
//!
//! Nothing else differs from one device: the loader's order, z and the fake labels are
//! the whole batch's, split; the state (weights, Adam's moments, the EMA, the first
//! replica's buffers) lives on the first device, so checkpoints are a one-device run's
//! and a run resumes on any number of devices.
//!
//! BatchNorm normalizes each shard with its own statistics, as DataParallel does (the
//! running statistics are the first shard's), unless `sync_bn`: then its layers sum
//! their statistics over the shards, which makes a step that of one device up to
//! rounding. Spectral norm's power iteration runs on every replica from the same weight
//! and vectors, so the vectors stay identical; the first replica's are kept.
//!
//! One device is the plain case: no thread, no copy, the same operations as before.

use std::sync::{Condvar, Mutex, MutexGuard};

use burn::prelude::*;
use kernels::Kernels;

use crate::discriminator::Output;
use crate::layers::SumShards;
use crate::tensors::Tensors;

/// The devices of a training, one per shard (a device may hold several).
pub struct Shards<B: Backend> {
    devices: Vec<B::Device>,
    /// With `sync_bn` and several shards, the pools of the shards' threads (and so
    /// whether BatchNorm layers sum their statistics over the shards).
    pools: Vec<rayon::ThreadPool>,
}

/// One shard, as a step's work on it sees it.
pub struct Shard<'a, C: Backend> {
    pub device: &'a C::Device,
    sync: Option<Synced<'a, C>>,
}

impl<C: Backend> Shard<'_, C> {
    /// What BatchNorm layers sum their statistics with (none without `sync_bn`).
    pub fn sync(&self) -> Option<&dyn SumShards<C>> {
        self.sync.as_ref().map(|s| s as &dyn SumShards<C>)
    }
}

impl<B: Kernels> Shards<B> {
    pub fn new(devices: Vec<B::Device>, sync_bn: bool) -> Shards<B> {
        assert!(
            !devices.is_empty(),
            "a training runs on at least one device"
        );
        // Shards take turns (see `each`): each may use every thread of the stage.
        let threads = rayon::current_num_threads();
        let pools = match devices.len() {
            n if n > 1 && sync_bn => (0..n)
                .map(|k| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .thread_name(move |i| format!("shard-{k}-{i}"))
                        .build()
                        .expect("a thread pool")
                })
                .collect(),
            _ => Vec::new(),
        };
        Shards { devices, pools }
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Where the state lives and the loss is computed.
    pub fn first(&self) -> &B::Device {
        &self.devices[0]
    }

    /// Runs `work` on every shard with its input; the results in shard order.
    ///
    /// The shards' operations are issued one shard after the other, always in the same
    /// order, so that a run is the same every time (the autodiff graph's order of
    /// operations decides the order in which a weight's gradients from several
    /// replicas add up). A GPU computes a shard's kernels while the next shard's are
    /// issued. With `sync_bn` every shard must reach each BatchNorm layer before any
    /// can go past it: each shard then has a thread, and they take turns, handing over
    /// at every layer's statistics.
    pub fn each<C, I, T>(
        &self,
        inputs: Vec<I>,
        work: impl Fn(Shard<'_, C>, I) -> T + Sync,
    ) -> Vec<T>
    where
        C: Backend<Device = B::Device>,
        I: Send,
        T: Send,
    {
        assert_eq!(inputs.len(), self.len(), "one input per shard");
        if self.pools.is_empty() {
            return inputs
                .into_iter()
                .zip(&self.devices)
                .map(|(input, device)| work(Shard { device, sync: None }, input))
                .collect();
        }
        let meeting = Rendezvous::<C>::new(self.devices.clone());
        std::thread::scope(|scope| {
            let running: Vec<_> = inputs
                .into_iter()
                .enumerate()
                .map(|(shard, input)| {
                    let (work, meeting) = (&work, &meeting);
                    let (pool, device) = (&self.pools[shard], &self.devices[shard]);
                    scope.spawn(move || {
                        let _poison = PoisonOnPanic(meeting);
                        meeting.wait_turn(shard);
                        let sync = Some(Synced { meeting, shard });
                        let out = pool.install(|| work(Shard { device, sync }, input));
                        meeting.pass_turn(shard);
                        out
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// The rows of a batch in order, a shard's on its device (the first stays put).
    pub fn split<C, const D: usize>(&self, batch: Tensor<C, D>) -> Vec<Tensor<C, D>>
    where
        C: Backend<Device = B::Device>,
    {
        let n = self.len();
        if n == 1 {
            return vec![batch];
        }
        let rows = batch.dims()[0] / n;
        (0..n)
            .map(|k| {
                let part = batch.clone().narrow(0, k * rows, rows);
                match k {
                    0 => part,
                    _ => part.to_device(&self.devices[k]),
                }
            })
            .collect()
    }

    /// A batch's labels split as [`Shards::split`] splits its rows.
    pub fn split_labels(&self, labels: &[u32]) -> Vec<Vec<u32>> {
        labels
            .chunks(labels.len() / self.len())
            .map(<[u32]>::to_vec)
            .collect()
    }

    /// The shards' rows back in one batch on the first device.
    pub fn gather<C, const D: usize>(&self, mut parts: Vec<Tensor<C, D>>) -> Tensor<C, D>
    where
        C: Backend<Device = B::Device>,
    {
        if parts.len() == 1 {
            return parts.pop().expect("one part");
        }
        let first = self.first();
        Tensor::cat(parts.into_iter().map(|p| p.to_device(first)).collect(), 0)
    }

    /// D's outputs on every shard as one output on the first device.
    pub fn gather_outputs<C>(&self, parts: Vec<Output<C>>) -> Output<C>
    where
        C: Kernels<Device = B::Device>,
    {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let mut features = Vec::new();
        let mut adv = Vec::new();
        let mut class_logits = Vec::new();
        let mut embeddings = Vec::new();
        let mut anchors = Vec::new();
        for part in parts {
            features.push(part.features);
            adv.push(part.adv);
            class_logits.extend(part.class_logits);
            if let Some((embedding, anchor)) = part.contrastive {
                embeddings.push(embedding);
                anchors.push(anchor);
            }
        }
        let some = |parts: Vec<Tensor<C, 2>>| (!parts.is_empty()).then(|| self.gather(parts));
        Output {
            features: self.gather(features),
            adv: self.gather(adv),
            class_logits: some(class_logits),
            contrastive: some(embeddings).zip(some(anchors)),
        }
    }

    /// A network's replica on every shard: the first shard's is `tensors` itself, the
    /// others copies whose gradients flow back into it.
    pub fn replicate<C>(&self, tensors: &Tensors<C>) -> Vec<Tensors<C>>
    where
        C: Backend<Device = B::Device>,
    {
        self.devices
            .iter()
            .enumerate()
            .map(|(k, device)| match k {
                0 => tensors.clone(),
                _ => tensors.to_device(device),
            })
            .collect()
    }
}

/// One shard's handle on the rendezvous.
struct Synced<'a, C: Backend> {
    meeting: &'a Rendezvous<C>,
    shard: usize,
}

impl<C: Backend> SumShards<C> for Synced<'_, C> {
    fn sum(&self, local: Tensor<C, 2>) -> Tensor<C, 2> {
        self.meeting.sum(self.shard, local)
    }

    fn shards(&self) -> usize {
        self.meeting.devices.len()
    }
}

/// Where the shards' threads meet to sum a BatchNorm layer's statistics, taking turns:
/// one shard runs at a time, shard 0 first; at a layer a shard leaves its part and
/// hands over to the next, and when its turn comes back every shard has left its part
/// of that layer, so it takes the sum (in shard order, on its own device: the same
/// numbers on every shard) and goes on to the next layer. Two rounds are kept, the one
/// being taken and the next. A shard that panics poisons it, so that the others fail
/// too instead of waiting for ever.
struct Rendezvous<C: Backend> {
    devices: Vec<C::Device>,
    state: Mutex<Turns<C>>,
    changed: Condvar,
}

struct Turns<C: Backend> {
    /// The shard whose turn it is.
    turn: usize,
    /// Each shard's next round.
    round: Vec<usize>,
    /// The parts of two rounds (by parity), and how many shards took each sum.
    parts: [Vec<Option<Tensor<C, 2>>>; 2],
    taken: [usize; 2],
    poisoned: bool,
}

impl<C: Backend> Rendezvous<C> {
    fn new(devices: Vec<C::Device>) -> Rendezvous<C> {
        let n = devices.len();
        Rendezvous {
            devices,
            state: Mutex::new(Turns {
                turn: 0,
                round: vec![0; n],
                parts: [vec![None; n], vec![None; n]],
                taken: [0; 2],
                poisoned: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Turns<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until it is `shard`'s turn.
    fn wait_turn(&self, shard: usize) {
        let turns = self.lock();
        let turns = self
            .changed
            .wait_while(turns, |t| !t.poisoned && t.turn != shard)
            .unwrap_or_else(|e| e.into_inner());
        assert!(!turns.poisoned, "another shard of the step failed");
    }

    fn pass_turn(&self, shard: usize) {
        let mut turns = self.lock();
        turns.turn = (shard + 1) % self.devices.len();
        self.changed.notify_all();
    }

    fn sum(&self, shard: usize, local: Tensor<C, 2>) -> Tensor<C, 2> {
        let n = self.devices.len();
        let round = {
            let mut turns = self.lock();
            let round = turns.round[shard];
            turns.round[shard] += 1;
            turns.parts[round % 2][shard] = Some(local);
            round
        };
        self.pass_turn(shard);
        self.wait_turn(shard);
        let parts: Vec<Tensor<C, 2>> = {
            let mut turns = self.lock();
            let parts = turns.parts[round % 2]
                .iter()
                .map(|p| p.clone().expect("every shard's part of the round"))
                .collect();
            turns.taken[round % 2] += 1;
            if turns.taken[round % 2] == n {
                turns.taken[round % 2] = 0;
                turns.parts[round % 2].iter_mut().for_each(|p| *p = None);
            }
            parts
        };
        let device = &self.devices[shard];
        parts
            .into_iter()
            .map(|p| p.to_device(device))
            .reduce(|a, b| a + b)
            .expect("at least one shard")
    }
}

/// Poisons the rendezvous if its shard's thread unwinds.
struct PoisonOnPanic<'a, C: Backend>(&'a Rendezvous<C>);

impl<C: Backend> Drop for PoisonOnPanic<'_, C> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().poisoned = true;
            self.0.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Mode;
    use crate::tensors::label_tensor;
    use crate::{discriminator, generator, loss};
    use burn::backend::Flex;

    fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
    }

    fn random(shape: [usize; 4], seed: u64) -> Tensor<Flex, 4> {
        let mut rng = rng::Rng::new(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    #[test]
    fn a_batch_norm_free_network_on_shards_is_the_whole_batchs_and_so_is_the_2c_loss() {
        let (model, _) = crate::train::tests::configs();
        let device = Default::default();
        let labels: Vec<u32> = vec![0, 1, 2, 3, 0, 1, 2, 3];
        let x = random([8, 3, 32, 32], 1);
        let d = discriminator::build::<Flex>(&model, 2, &device);

        let mut whole_d = d.clone();
        let y = label_tensor(&labels, &device);
        let whole = discriminator::run(&mut whole_d, Mode::TRAIN, &model, x.clone(), y);

        let shards = Shards::<Flex>::new(vec![device; 2], false);
        let inputs: Vec<_> = shards
            .replicate(&d)
            .into_iter()
            .zip(shards.split(x))
            .zip(shards.split_labels(&labels))
            .collect();
        let outs = shards.each(inputs, |shard, ((mut d, x), labels)| {
            let y = label_tensor(&labels, shard.device);
            let out = discriminator::run_shard(&mut d, Mode::TRAIN, &model, x, y, shard.sync());
            (d, out)
        });
        let (replicas, parts): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
        let per_shard: Vec<f32> = parts
            .iter()
            .zip(shards.split_labels(&labels))
            .map(|(out, labels)| {
                let (e, a) = out.contrastive.clone().unwrap();
                values(loss::contrastive(e, a, &labels, 1.0, true, None))[0]
            })
            .collect();
        let gathered = shards.gather_outputs(parts);
        // D has no BatchNorm: every image's output is the same computation on a shard
        // as in the whole batch, up to the order of sums in its matrix products.
        let (adv, whole_adv) = (values(gathered.adv.clone()), values(whole.adv.clone()));
        assert!(
            largest_difference(&adv, &whole_adv) <= 1e-5,
            "{adv:?} {whole_adv:?}"
        );
        // Spectral norm iterated from the same vectors on every replica: the same.
        for (name, entry) in whole_d.iter() {
            let kept = values(replicas[0].get(name).unwrap().value.clone());
            assert_eq!(values(entry.value.clone()), kept, "{name}");
        }
        // The 2C loss of the gathered embeddings is the whole batch's; the shards'
        // own losses would be another number.
        let two_c = |out: &Output<Flex>| {
            let (e, a) = out.contrastive.clone().unwrap();
            values(loss::contrastive(e, a, &labels, 1.0, true, None))[0]
        };
        assert!((two_c(&gathered) - two_c(&whole)).abs() <= 1e-5);
        let mean_of_shards = per_shard.iter().sum::<f32>() / 2.0;
        assert!(
            (mean_of_shards - two_c(&whole)).abs() > 0.1,
            "{per_shard:?}"
        );
    }

    #[test]
    fn batch_norm_per_shard_is_each_halfs_and_synchronized_the_whole_batchs() {
        let (model, _) = crate::train::tests::configs();
        let device = Default::default();
        let labels: Vec<u32> = vec![0, 1, 2, 3, 3, 2, 1, 0];
        let mut rng = rng::Rng::new(4);
        let z: Vec<f32> = (0..8 * model.z_dim).map(|_| rng.normal() as f32).collect();
        let z = Tensor::<Flex, 2>::from_data(TensorData::new(z, [8, model.z_dim]), &device);
        let g = generator::build::<Flex>(&model, 3, &device);
        let alone = |z: Tensor<Flex, 2>, labels: &[u32]| {
            let y = label_tensor(labels, &device);
            values(generator::run(&mut g.clone(), Mode::TRAIN, &model, z, y))
        };
        let sharded = |sync_bn: bool| {
            let shards = Shards::<Flex>::new(vec![device; 2], sync_bn);
            let inputs: Vec<_> = shards
                .split(z.clone())
                .into_iter()
                .zip(shards.split_labels(&labels))
                .collect();
            let parts = shards.each(inputs, |shard, (z, labels)| {
                let y = label_tensor(&labels, shard.device);
                generator::run_shard(&mut g.clone(), Mode::TRAIN, &model, z, y, shard.sync())
            });
            values(shards.gather(parts))
        };
        let halves = [
            alone(z.clone().narrow(0, 0, 4), &labels[..4]),
            alone(z.clone().narrow(0, 4, 4), &labels[4..]),
        ]
        .concat();
        assert_eq!(sharded(false), halves, "each shard with its own statistics");
        let whole = alone(z.clone(), &labels);
        let synced = sharded(true);
        assert!(
            largest_difference(&synced, &whole) <= 1e-5,
            "synchronized: the whole batch's"
        );
        assert!(largest_difference(&halves, &whole) > 1e-3);
    }
}
