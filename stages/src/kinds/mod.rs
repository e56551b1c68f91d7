//! Stage kinds, one module each.

pub mod classifier;
pub mod dataset;
pub mod download;
pub mod inception_stats;
pub mod report;
pub mod sample;
pub mod score;
pub mod train;
pub mod weights;
