//! Running the FID Inception network over many images, batch by batch.

use burn::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use kernels::Kernels;

use super::inception::{FidInception, Outputs, images_tensor};
use super::{MetricError, Stats, StatsBuilder};
use kernels::device::OnBackend;

/// Images to extract features from: same-size groups of RGB u8 pixels, in order.
pub trait ImageSource: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Image `i`: width, height and pixels.
    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError>;
}

impl ImageSource for data::Packed {
    fn len(&self) -> usize {
        data::Packed::len(self)
    }

    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError> {
        let h = self.header();
        Ok((
            h.width as usize,
            h.height as usize,
            std::borrow::Cow::Borrowed(data::Packed::image(self, i)),
        ))
    }
}

/// The first images of a source.
pub struct First<S>(pub S, pub usize);

impl<S: ImageSource> ImageSource for First<S> {
    fn len(&self) -> usize {
        self.1.min(self.0.len())
    }

    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError> {
        self.0.image(i)
    }
}

/// Labelled images held in memory, all of one size (samples scored as they are made).
pub struct InMemory {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    labels: Vec<u32>,
}

impl InMemory {
    pub fn new(width: usize, height: usize) -> InMemory {
        InMemory {
            width,
            height,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Adds one image's RGB pixels (HWC) and its label.
    pub fn push(&mut self, pixels: &[u8], label: u32) {
        debug_assert_eq!(pixels.len(), self.width * self.height * 3);
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

impl ImageSource for InMemory {
    fn len(&self) -> usize {
        self.pixels.len() / (self.width * self.height * 3)
    }

    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError> {
        let n = self.width * self.height * 3;
        Ok((
            self.width,
            self.height,
            std::borrow::Cow::Borrowed(&self.pixels[i * n..(i + 1) * n]),
        ))
    }
}

/// A network whose pooled features and class logits the metrics are computed in:
/// a released backbone ([`Pretrained`](super::backbone::Pretrained)), or any other that maps images to
/// features and logits (the `gan` crate's trained classifier).
pub trait FeatureNetwork: Sync {
    /// What the numbers are measured in, for summaries and reports.
    fn describe(&self) -> String;
    /// The network on backend `B`, ready to run batches.
    fn load<B: Kernels>(
        &self,
        device: &B::Device,
    ) -> Result<Box<dyn LoadedNetwork<B> + '_>, MetricError>;
}

/// A feature network on a backend.
pub trait LoadedNetwork<B: Kernels> {
    /// Features and logits of a batch of RGB images in [0, 1] (NCHW); `first` is the
    /// index of its first image, for errors.
    fn forward(&mut self, images: Tensor<B, 4>, first: usize) -> Result<Outputs, MetricError>;
}

impl<B: Kernels> LoadedNetwork<B> for FidInception<B> {
    fn forward(&mut self, images: Tensor<B, 4>, _first: usize) -> Result<Outputs, MetricError> {
        FidInception::forward(self, images)
    }
}

/// What to compute, and what to report along the way.
pub struct Extraction<'a, N> {
    pub network: &'a N,
    pub images: &'a dyn ImageSource,
    pub batch: usize,
    /// Keep every image's features, not only the statistics.
    pub keep: bool,
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    pub cancel: &'a AtomicBool,
}

/// Statistics of the pool features and, if asked, the features and logits themselves
/// (row-major, `features` and `classes` columns).
pub struct Extracted {
    pub stats: Option<Stats>,
    pub count: usize,
    pub features: usize,
    pub classes: usize,
    pub pool3: Vec<f32>,
    pub logits: Vec<f32>,
}

impl<N: FeatureNetwork> OnBackend for Extraction<'_, N> {
    type Output = Result<Extracted, MetricError>;

    fn run<B: Kernels>(self, device: B::Device) -> Self::Output {
        let mut net = self.network.load::<B>(&device)?;
        let n = self.images.len();
        let mut builder: Option<StatsBuilder> = None;
        let mut out = Extracted {
            stats: None,
            count: n,
            features: 0,
            classes: 0,
            pool3: Vec::new(),
            logits: Vec::new(),
        };
        let mut start = 0;
        while start < n {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(MetricError::Cancelled);
            }
            // A batch: up to `batch` consecutive images of the same size.
            let (w, h, first) = self.images.image(start)?;
            let mut pixels = first.into_owned();
            let mut end = start + 1;
            while end < n && end - start < self.batch {
                let (w2, h2, px) = self.images.image(end)?;
                if (w2, h2) != (w, h) {
                    break;
                }
                pixels.extend_from_slice(&px);
                end += 1;
            }
            let count = end - start;
            let images = images_tensor::<B>(&pixels, count, h, w, &device);
            let Outputs { pool3, logits } = net.forward(images, start)?;
            out.features = pool3.len() / count;
            out.classes = logits.len() / count;
            if let Some(i) = pool3.iter().position(|v| !v.is_finite()) {
                return Err(MetricError::Invalid(format!(
                    "image {}: the network produced a non-finite feature",
                    start + i / out.features
                )));
            }
            builder
                .get_or_insert_with(|| StatsBuilder::new(out.features))
                .add(&pool3);
            if self.keep {
                out.pool3.extend(pool3);
                out.logits.extend(logits);
            }
            start = end;
            (self.progress)(start as u64, n as u64);
        }
        out.stats = builder
            .filter(|b| b.count() >= 2)
            .map(StatsBuilder::finish)
            .transpose()?;
        Ok(out)
    }
}
