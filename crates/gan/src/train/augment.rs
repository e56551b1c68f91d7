//! The augmentation of D's inputs, where one is on: DiffAugment (`diffaug.rs`) or ADA
//! (`ada.rs`). Each transform of a batch is drawn once from the sub-step's stream; the
//! draws are kept where R1's forward mode must go through the same transform (both
//! are affine in the images for given draws).

use burn::prelude::*;
use rng::Rng;

use super::{ada, diffaug};
use crate::config::{AdaPipeline, TrainConfig};

/// Which augmentation D's inputs go through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Augmentation {
    DiffAugment,
    Ada(AdaPipeline),
}

/// One batch's random choices of an [`Augmentation`].
#[derive(Debug, Clone, PartialEq)]
pub enum Draws {
    DiffAugment(diffaug::Draws),
    Ada(ada::Draws),
}

impl Augmentation {
    pub fn of(train: &TrainConfig) -> Option<Augmentation> {
        match (train.apply_diffaug, train.ada) {
            (_, Some(ada)) => Some(Augmentation::Ada(ada.pipeline)),
            (true, None) => Some(Augmentation::DiffAugment),
            (false, None) => None,
        }
    }

    /// Draws for `[n, c, h, w]` images; ADA's transforms fire with probability `p`.
    pub fn draw(&self, [n, _, h, w]: [usize; 4], p: f64, rng: &mut Rng) -> Draws {
        match self {
            Augmentation::DiffAugment => Draws::DiffAugment(diffaug::Draws::draw(n, h, w, rng)),
            Augmentation::Ada(pipeline) => Draws::Ada(ada::Draws::draw(*pipeline, n, p, rng)),
        }
    }

    /// `images` augmented with fresh draws.
    pub fn apply<B: Backend>(&self, images: Tensor<B, 4>, p: f64, rng: &mut Rng) -> Tensor<B, 4> {
        self.draw(images.dims(), p, rng).apply(images)
    }
}

impl Draws {
    pub fn apply<B: Backend>(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Draws::DiffAugment(draws) => diffaug::apply(images, draws),
            Draws::Ada(draws) => ada::apply(images, draws),
        }
    }
}
