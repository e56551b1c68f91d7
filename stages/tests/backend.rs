//! The backend the parity tests run on: burn-flex, or CUDA device 0 in builds with the
//! `cuda` feature, so that the same tests check the GPU path on a machine that has one.

#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
pub type Backend = burn::backend::Flex;
