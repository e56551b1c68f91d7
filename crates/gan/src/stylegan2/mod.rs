//! StyleGAN2 as StudioGAN v0.4 builds it (`models/stylegan2.py`, a fork of NVIDIA's
//! stylegan2-ada-pytorch): the mapping network, the synthesis network and the
//! discriminator, on the FIR resampling of [`crate::upfirdn2d`] and the fused bias and
//! activation of [`crate::bias_act`]. Tensors carry the names of the authors' state
//! dicts (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, `b4.mbstd`…).

pub mod discriminator;
pub mod layers;
pub mod mapping;
pub mod synthesis;
