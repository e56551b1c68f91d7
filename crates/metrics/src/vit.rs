//! The Vision Transformers of DINO (`facebookresearch/dino`, which StudioGAN v0.4 copies
//! as `metrics/vit.py`) and DINOv2 (`facebookresearch/dinov2`), as feature networks.
//! Both are pre-norm transformers (LayerNorm eps 1e-6, exact GELU, biased qkv) over
//! non-overlapping patches and a CLS token; DINOv2 adds a learnt per-channel scale on
//! each residual branch (layer scale). The features are the CLS token after the final
//! norm, taken from the last `last_blocks` blocks and concatenated (v0.4 takes DINO's
//! last four; DINOv2's output is the last block's alone).
//!
//! The position embedding was learnt on a grid of `grid × grid` patches; images of
//! another number of patches get it resized as both references do: PyTorch's bicubic
//! interpolation (a = −0.75, borders replicated) with a scale factor of
//! `(patches + 0.1) / grid`, computed once per input size on the host in f64.

use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::ops::ConvOptions;
use kernels::{Kernels, conv2d, linear};
use serde::{Deserialize, Serialize};

use super::MetricError;
use super::tensors::Tensors;

const LN_EPS: f64 = 1e-6;
/// Added to the patch count before the scale factor is taken, as both references do
/// (dino issue #8: it keeps the output size from rounding down).
const INTERPOLATE_OFFSET: f64 = 0.1;

/// The shape of a ViT and which features it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitShape {
    pub patch: usize,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub mlp: usize,
    /// Side of the square patch grid the position embedding was learnt on.
    pub grid: usize,
    /// Whether each residual branch has a learnt scale (`ls1.gamma`, `ls2.gamma`).
    pub layer_scale: bool,
    /// How many of the last blocks give their normalized CLS token to the features.
    pub last_blocks: usize,
}

impl VitShape {
    /// DINO's ViT-S/8 (`dino_deitsmall8_pretrain.pth`) with v0.4's features: the CLS
    /// tokens of the last four blocks, 1536 values.
    pub const DINO_VIT_S8: VitShape = VitShape {
        patch: 8,
        dim: 384,
        depth: 12,
        heads: 6,
        mlp: 1536,
        grid: 28,
        layer_scale: false,
        last_blocks: 4,
    };

    /// DINOv2's ViT-L/14 (`dinov2_vitl14_pretrain.pth`, learnt at 518×518), its CLS
    /// token: 1024 values.
    pub const DINOV2_VIT_L14: VitShape = VitShape {
        patch: 14,
        dim: 1024,
        depth: 24,
        heads: 16,
        mlp: 4096,
        grid: 37,
        layer_scale: true,
        last_blocks: 1,
    };

    pub fn features(&self) -> usize {
        self.dim * self.last_blocks
    }
}

/// A linear layer, its weight held transposed (`[in, out]`) for `x · W`.
#[derive(Debug, Clone)]
struct Linear<B: Backend> {
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
}

impl<B: Kernels> Linear<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, c] = x.dims();
        let out = self.weight.dims()[1];
        let y = linear(
            x.reshape([b * n, c]),
            self.weight.clone(),
            self.bias.clone(),
        );
        y.reshape([b, n, out])
    }
}

#[derive(Debug, Clone)]
struct LayerNorm<B: Backend> {
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
}

impl<B: Backend> LayerNorm<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let (var, mean) = x.clone().var_mean_bias(2);
        let x = (x - mean) / (var + LN_EPS).sqrt();
        x * self.weight.clone().unsqueeze::<3>() + self.bias.clone().unsqueeze::<3>()
    }
}

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    norm1: LayerNorm<B>,
    qkv: Linear<B>,
    proj: Linear<B>,
    norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    /// Layer scales of the attention and MLP branches.
    scales: Option<[Tensor<B, 1>; 2]>,
    heads: usize,
}

impl<B: Kernels> Block<B> {
    fn attention(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, c] = x.dims();
        let h = self.heads;
        let d = c / h;
        // [b, n, 3, h, d] → three [b, h, n, d].
        let qkv = self.qkv.forward(x).reshape([b, n, 3, h, d]);
        let part = |i: usize| {
            qkv.clone()
                .slice([0..b, 0..n, i..i + 1, 0..h, 0..d])
                .reshape([b, n, h, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let attn = softmax(q.matmul(k.swap_dims(2, 3)) * (d as f64).powf(-0.5), 3);
        let y = attn.matmul(v).swap_dims(1, 2).reshape([b, n, c]);
        self.proj.forward(y)
    }

    fn mlp(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let scaled = |y: Tensor<B, 3>, i: usize| match &self.scales {
            Some(s) => y * s[i].clone().unsqueeze::<3>(),
            None => y,
        };
        let x = x.clone() + scaled(self.attention(self.norm1.forward(x)), 0);
        x.clone() + scaled(self.mlp(self.norm2.forward(x)), 1)
    }
}

#[derive(Debug, Clone)]
pub struct Vit<B: Backend> {
    shape: VitShape,
    patch_weight: Tensor<B, 4>,
    patch_bias: Tensor<B, 1>,
    /// The CLS token with its position embedding added.
    cls_token: Tensor<B, 3>,
    /// The patches' position embedding for the input size, `[1, patches, dim]`.
    positions: Tensor<B, 3>,
    /// Patches along each side of the input.
    side: usize,
    blocks: Vec<Block<B>>,
    norm: LayerNorm<B>,
}

impl<B: Kernels> Vit<B> {
    /// The network for square inputs of `size` pixels.
    pub fn load(
        w: &dyn Tensors,
        shape: VitShape,
        size: usize,
        device: &B::Device,
    ) -> Result<Self, MetricError> {
        let VitShape {
            patch, dim, grid, ..
        } = shape;
        let tensor = |key: &str, dims: &[usize]| -> Result<Vec<f32>, MetricError> {
            Ok(w.take(key, dims)?.into_iter().map(|v| v as f32).collect())
        };
        let vector = |key: &str, len: usize| -> Result<Tensor<B, 1>, MetricError> {
            Ok(Tensor::from_data(
                TensorData::new(tensor(key, &[len])?, [len]),
                device,
            ))
        };
        let linear = |name: &str, cin: usize, cout: usize| -> Result<Linear<B>, MetricError> {
            // `[out, in]` as the release holds it → `[in, out]`, contiguous.
            let weight = tensor(&format!("{name}.weight"), &[cout, cin])?;
            let transposed = (0..cin * cout)
                .map(|k| weight[(k % cout) * cin + k / cout])
                .collect();
            Ok(Linear {
                weight: Tensor::from_data(TensorData::new(transposed, [cin, cout]), device),
                bias: vector(&format!("{name}.bias"), cout)?,
            })
        };
        let norm = |name: &str| -> Result<LayerNorm<B>, MetricError> {
            Ok(LayerNorm {
                weight: vector(&format!("{name}.weight"), dim)?,
                bias: vector(&format!("{name}.bias"), dim)?,
            })
        };
        let positions = w.take("pos_embed", &[1, grid * grid + 1, dim])?;
        let side = size / patch;
        let patches = resized_positions(&positions[dim..], grid, side, dim);
        let cls: Vec<f32> = tensor("cls_token", &[1, 1, dim])?
            .iter()
            .zip(&positions[..dim])
            .map(|(t, p)| t + *p as f32)
            .collect();
        let blocks = (0..shape.depth)
            .map(|i| {
                let n = format!("blocks.{i}");
                Ok(Block {
                    norm1: norm(&format!("{n}.norm1"))?,
                    qkv: linear(&format!("{n}.attn.qkv"), dim, 3 * dim)?,
                    proj: linear(&format!("{n}.attn.proj"), dim, dim)?,
                    norm2: norm(&format!("{n}.norm2"))?,
                    fc1: linear(&format!("{n}.mlp.fc1"), dim, shape.mlp)?,
                    fc2: linear(&format!("{n}.mlp.fc2"), shape.mlp, dim)?,
                    scales: if shape.layer_scale {
                        Some([
                            vector(&format!("{n}.ls1.gamma"), dim)?,
                            vector(&format!("{n}.ls2.gamma"), dim)?,
                        ])
                    } else {
                        None
                    },
                    heads: shape.heads,
                })
            })
            .collect::<Result<Vec<_>, MetricError>>()?;
        Ok(Vit {
            shape,
            patch_weight: Tensor::from_data(
                TensorData::new(
                    tensor("patch_embed.proj.weight", &[dim, 3, patch, patch])?,
                    [dim, 3, patch, patch],
                ),
                device,
            ),
            patch_bias: vector("patch_embed.proj.bias", dim)?,
            cls_token: Tensor::from_data(TensorData::new(cls, [1, 1, dim]), device),
            positions: Tensor::from_data(TensorData::new(patches, [1, side * side, dim]), device),
            side,
            blocks,
            norm: norm("norm")?,
        })
    }

    /// Normalized images `[n, 3, size, size]` → features `[n, dim · last_blocks]`.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let [n, ..] = x.dims();
        let (patch, dim) = (self.shape.patch, self.shape.dim);
        let options = ConvOptions::new([patch, patch], [0, 0], [1, 1], 1);
        let x = conv2d(
            x,
            self.patch_weight.clone(),
            Some(self.patch_bias.clone()),
            options,
        );
        let [_, _, rows, cols] = x.dims();
        assert_eq!(
            [rows, cols],
            [self.side; 2],
            "the ViT was loaded for another size"
        );
        let patches = x.reshape([n, dim, rows * cols]).swap_dims(1, 2) + self.positions.clone();
        let cls = self.cls_token.clone().expand([n, 1, dim]);
        let mut x = Tensor::cat(vec![cls, patches], 1);
        let first_kept = self.blocks.len() - self.shape.last_blocks;
        let mut kept = Vec::with_capacity(self.shape.last_blocks);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if i >= first_kept {
                let cls = x.clone().slice([0..n, 0..1, 0..dim]);
                kept.push(self.norm.forward(cls).reshape([n, dim]));
            }
        }
        Tensor::cat(kept, 1)
    }
}

/// The patches' position embedding, learnt on a `grid × grid` grid (`[grid², dim]`),
/// for a `side × side` grid: unchanged if the sides agree, else resized bicubically.
fn resized_positions(learnt: &[f64], grid: usize, side: usize, dim: usize) -> Vec<f32> {
    if side == grid {
        return learnt.iter().map(|&v| v as f32).collect();
    }
    let taps = bicubic_taps(grid, side);
    let mut out = vec![0f32; side * side * dim];
    for (r, (r0, wr)) in taps.iter().enumerate() {
        for (c, (c0, wc)) in taps.iter().enumerate() {
            let mut sum = vec![0f64; dim];
            for (i, wi) in wr.iter().enumerate() {
                for (j, wj) in wc.iter().enumerate() {
                    let (y, x) = (clamp(r0 + i as i64, grid), clamp(c0 + j as i64, grid));
                    let src = &learnt[(y * grid + x) * dim..][..dim];
                    for (d, s) in sum.iter_mut().zip(src) {
                        *d += wi * wj * s;
                    }
                }
            }
            let dst = &mut out[(r * side + c) * dim..][..dim];
            for (d, s) in dst.iter_mut().zip(sum) {
                *d = s as f32;
            }
        }
    }
    out
}

fn clamp(i: i64, size: usize) -> usize {
    i.clamp(0, size as i64 - 1) as usize
}

/// For each of `output` positions, the first of the four input positions it reads
/// and their weights: PyTorch's `upsample_bicubic2d` (align_corners false) with the
/// scale factor `(output + 0.1) / input`.
fn bicubic_taps(input: usize, output: usize) -> Vec<(i64, [f64; 4])> {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = input as f64 / (output as f64 + INTERPOLATE_OFFSET);
    (0..output)
        .map(|o| {
            let source = scale * (o as f64 + 0.5) - 0.5;
            let first = source.floor();
            let t = source - first;
            (
                first as i64 - 1,
                [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)],
            )
        })
        .collect()
}
