//! Running the FID Inception network over many images, batch by batch.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kernels::Kernels;

use super::inception::{FidInception, Outputs, images_tensor};
use super::{MetricError, Stats, StatsBuilder};
use crate::device::OnBackend;

/// Images to extract features from: same-size groups of RGB u8 pixels, in order.
pub trait ImageSource: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Image `i`: width, height and pixels.
    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError>;
}

impl ImageSource for crate::data::Packed {
    fn len(&self) -> usize {
        crate::data::Packed::len(self)
    }

    fn image(&self, i: usize) -> Result<(usize, usize, std::borrow::Cow<'_, [u8]>), MetricError> {
        let h = self.header();
        Ok((
            h.width as usize,
            h.height as usize,
            std::borrow::Cow::Borrowed(crate::data::Packed::image(self, i)),
        ))
    }
}

/// What to compute, and what to report along the way.
pub struct Extraction<'a> {
    pub weights: &'a Path,
    pub images: &'a dyn ImageSource,
    pub batch: usize,
    /// Keep every image's features, not only the statistics.
    pub keep: bool,
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    pub cancel: &'a AtomicBool,
}

/// Statistics of the pool features and, if asked, the features and logits themselves.
pub struct Extracted {
    pub stats: Option<Stats>,
    pub count: usize,
    pub pool3: Vec<f32>,
    pub logits: Vec<f32>,
}

impl OnBackend for Extraction<'_> {
    type Output = Result<Extracted, MetricError>;

    fn run<B: Kernels>(self, device: B::Device) -> Self::Output {
        let net = FidInception::<B>::load(self.weights, &device)?;
        let n = self.images.len();
        let mut builder = StatsBuilder::new(super::inception::FEATURES);
        let mut out = Extracted {
            stats: None,
            count: n,
            pool3: Vec::new(),
            logits: Vec::new(),
        };
        let mut start = 0;
        while start < n {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(MetricError::Invalid("cancelled".into()));
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
            let Outputs { pool3, logits } =
                net.forward(images_tensor::<B>(&pixels, end - start, h, w, &device))?;
            if let Some(i) = pool3.iter().position(|v| !v.is_finite()) {
                return Err(MetricError::Invalid(format!(
                    "image {}: the network produced a non-finite feature",
                    start + i / super::inception::FEATURES
                )));
            }
            builder.add(&pool3);
            if self.keep {
                out.pool3.extend(pool3);
                out.logits.extend(logits);
            }
            start = end;
            (self.progress)(start as u64, n as u64);
        }
        out.stats = (builder.count() >= 2)
            .then(|| builder.finish())
            .transpose()?;
        Ok(out)
    }
}
