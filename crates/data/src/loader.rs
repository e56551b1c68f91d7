//! Batches for training: a seeded shuffle per epoch, optional random horizontal flips,
//! pixels scaled to [-1, 1] in NCHW order, fixed-size batches (the last partial batch
//! dropped unless asked otherwise), prepared on a background thread.
//!
//! The sequence is a function of the seed alone: epoch `e` is shuffled by the stream
//! `(seed, e)`, so a loader can start at any batch (resuming a training run) and yield
//! exactly what an uninterrupted one would have.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::Packed;
use rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub seed: u64,
    pub flip: bool,
    pub drop_last: bool,
    /// Batches prepared ahead.
    pub prefetch: usize,
    /// Also each image's augmented copy ([`crate::views`]), for consistency
    /// regularization and augmented positives.
    pub views: bool,
}

/// One batch: images `[n, channels, height, width]` in [-1, 1], and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Each image's augmented copy, laid out as `images` (empty unless asked for).
    pub views: Vec<f32>,
    /// Which batch of the whole sequence this is (0, 1, 2, … across epochs).
    pub index: u64,
    pub epoch: u64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The order of one epoch and its flips.
struct Epoch {
    order: Vec<u32>,
    flips: Vec<bool>,
}

fn epoch(n: usize, seed: u64, e: u64, flip: bool) -> Epoch {
    let mut rng = Rng::stream(seed, e);
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);
    let flips = (0..n).map(|_| flip && rng.bool()).collect();
    Epoch { order, flips }
}

/// Batches per epoch for `n` images.
pub fn batches_per_epoch(n: usize, config: &LoaderConfig) -> u64 {
    if config.drop_last {
        (n / config.batch_size) as u64
    } else {
        n.div_ceil(config.batch_size) as u64
    }
}

/// Writes image `src` (HWC u8) into `dst` (CHW f32 in [-1, 1]), mirrored if `flip`.
fn convert(
    src: &[u8],
    dst: &mut [f32],
    height: usize,
    width: usize,
    channels: usize,
    flip: bool,
    lut: &[f32; 256],
) {
    let plane = height * width;
    for y in 0..height {
        let row = &src[y * width * channels..(y + 1) * width * channels];
        for x in 0..width {
            let sx = if flip { width - 1 - x } else { x };
            let px = &row[sx * channels..sx * channels + channels];
            for c in 0..channels {
                dst[c * plane + y * width + x] = lut[px[c] as usize];
            }
        }
    }
}

/// Produces batches from `start` on, forever; the caller stops when it has enough.
pub struct Producer {
    data: Arc<Packed>,
    config: LoaderConfig,
    next: u64,
    current: Option<(u64, Epoch)>,
    lut: [f32; 256],
}

impl Producer {
    pub fn new(data: Arc<Packed>, config: LoaderConfig, start: u64) -> Producer {
        assert!(config.batch_size > 0, "batch size 0");
        let mut lut = [0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 127.5 - 1.0;
        }
        Producer {
            data,
            config,
            next: start,
            current: None,
            lut,
        }
    }

    pub fn next_batch(&mut self) -> Batch {
        let n = self.data.len();
        let per_epoch = batches_per_epoch(n, &self.config);
        assert!(
            per_epoch > 0,
            "{n} images make no batch of {}",
            self.config.batch_size
        );
        let (e, b) = (self.next / per_epoch, (self.next % per_epoch) as usize);
        if self.current.as_ref().is_none_or(|(ce, _)| *ce != e) {
            self.current = Some((e, epoch(n, self.config.seed, e, self.config.flip)));
        }
        let (_, ep) = self.current.as_ref().expect("set above");
        let start = b * self.config.batch_size;
        let end = (start + self.config.batch_size).min(n);
        let header = self.data.header();
        let (h, w, c) = (
            header.height as usize,
            header.width as usize,
            header.channels as usize,
        );
        let size = h * w * c;
        let mut images = vec![0f32; (end - start) * size];
        let mut views = vec![0f32; if self.config.views { images.len() } else { 0 }];
        let mut labels = Vec::with_capacity(end - start);
        for (slot, pos) in (start..end).enumerate() {
            let i = ep.order[pos] as usize;
            let image = &mut images[slot * size..(slot + 1) * size];
            convert(self.data.image(i), image, h, w, c, ep.flips[pos], &self.lut);
            if self.config.views {
                let view = &mut views[slot * size..(slot + 1) * size];
                crate::views::augmented_view(image, c, h, w, i, view);
            }
            labels.push(self.data.label(i));
        }
        let batch = Batch {
            images,
            labels,
            views,
            index: self.next,
            epoch: e,
        };
        self.next += 1;
        batch
    }
}

/// A [`Producer`] on a background thread, `prefetch` batches ahead.
pub struct Loader {
    rx: Receiver<Batch>,
    _thread: JoinHandle<()>,
}

impl Loader {
    pub fn new(data: Arc<Packed>, config: LoaderConfig, start: u64) -> Loader {
        let (tx, rx): (SyncSender<Batch>, _) = sync_channel(config.prefetch.max(1));
        let mut producer = Producer::new(data, config, start);
        let thread = std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || {
                // Ends when the receiver is dropped.
                while tx.send(producer.next_batch()).is_ok() {}
            })
            .expect("spawn the loader thread");
        Loader {
            rx,
            _thread: thread,
        }
    }
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::PackWriter;
    use super::*;

    fn data(n: u32) -> (tempfile::TempDir, Arc<Packed>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pack");
        let mut w = PackWriter::create(&path, 2, 2, vec!["a".into(), "b".into()], "t").unwrap();
        for i in 0..n {
            // Pixel (y, x) channel c = 10·i + 4·y + 2·x + c (distinct per image).
            let px: Vec<u8> = (0..12)
                .map(|k| (10 * i + (k / 6) * 4 + ((k / 3) % 2) * 2 + k % 3) as u8)
                .collect();
            w.push(&px, i % 2).unwrap();
        }
        w.finish().unwrap();
        let p = Arc::new(Packed::open(&path).unwrap());
        (dir, p)
    }

    fn config(flip: bool, drop_last: bool) -> LoaderConfig {
        LoaderConfig {
            batch_size: 3,
            seed: 11,
            flip,
            drop_last,
            prefetch: 2,
            views: false,
        }
    }

    #[test]
    fn epochs_are_permutations_and_batches_drop_the_rest() {
        let (_d, p) = data(8);
        let batches: Vec<Batch> = Loader::new(p.clone(), config(false, true), 0)
            .take(4)
            .collect();
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            [3, 3, 3, 3]
        );
        assert_eq!(
            batches.iter().map(|b| b.epoch).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
        // First value of each image identifies it: 10·i scaled.
        let ids = |b: &Batch| -> Vec<u32> {
            (0..b.len())
                .map(|s| ((b.images[s * 12] + 1.0) * 127.5).round() as u32 / 10)
                .collect()
        };
        let mut first_epoch: Vec<u32> = ids(&batches[0])
            .into_iter()
            .chain(ids(&batches[1]))
            .collect();
        first_epoch.sort();
        first_epoch.dedup();
        assert_eq!(first_epoch.len(), 6, "no image twice in an epoch");
        let labels: Vec<u32> = ids(&batches[0]).iter().map(|i| i % 2).collect();
        assert_eq!(batches[0].labels, labels);
        let all: Vec<Batch> = Loader::new(p, config(false, false), 0).take(3).collect();
        assert_eq!(all.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3, 2]);
    }

    #[test]
    fn same_seed_same_sequence_and_resume_anywhere() {
        let (_d, p) = data(10);
        let a: Vec<Batch> = Loader::new(p.clone(), config(true, true), 0)
            .take(9)
            .collect();
        let b: Vec<Batch> = Loader::new(p.clone(), config(true, true), 0)
            .take(9)
            .collect();
        assert_eq!(a, b);
        let resumed: Vec<Batch> = Loader::new(p.clone(), config(true, true), 5)
            .take(4)
            .collect();
        assert_eq!(resumed, a[5..]);
        let other: Vec<Batch> = Loader::new(
            p,
            LoaderConfig {
                seed: 12,
                ..config(true, true)
            },
            0,
        )
        .take(9)
        .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn scaling_layout_and_flip() {
        let mut lut = [0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 127.5 - 1.0;
        }
        // 1×2 image, RGB: left pixel (0, 255, 51), right pixel (102, 153, 204).
        let src = [0u8, 255, 51, 102, 153, 204];
        let mut dst = [0f32; 6];
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        convert(&src, &mut dst, 1, 2, 3, false, &lut);
        // Planes: R = (0, 102), G = (255, 153), B = (51, 204).
        assert!(close(&dst, &[-1.0, -0.2, 1.0, 0.2, -0.6, 0.6]), "{dst:?}");
        convert(&src, &mut dst, 1, 2, 3, true, &lut);
        assert!(close(&dst, &[-0.2, -1.0, 0.2, 1.0, 0.6, -0.6]), "{dst:?}");
    }
}
