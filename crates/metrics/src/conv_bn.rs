//! A convolution followed by inference-mode BatchNorm, the BatchNorm folded into the
//! convolution when loading (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), in f64): the
//! unit of the Inception and ResNet feature networks.

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use kernels::{Kernels, avg_pool3, conv2d, conv2d_relu};

use super::MetricError;
use super::tensors::Tensors;

/// Where a convolution's tensors are and what it is.
pub struct ConvSpec<'a> {
    /// The convolution's weight (no bias: the BatchNorm has it).
    pub weight: &'a str,
    /// The BatchNorm's prefix (`….bn`), whose `weight`, `bias`, `running_mean` and
    /// `running_var` are taken.
    pub bn: &'a str,
    pub eps: f64,
    pub cin: usize,
    pub cout: usize,
    pub kernel: [usize; 2],
    pub stride: usize,
    pub padding: [usize; 2],
}

#[derive(Debug, Clone)]
pub struct ConvBn<B: Kernels> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    options: ConvOptions<2>,
}

impl<B: Kernels> ConvBn<B> {
    pub fn load(w: &dyn Tensors, s: ConvSpec, device: &B::Device) -> Result<Self, MetricError> {
        let ConvSpec {
            cin, cout, kernel, ..
        } = s;
        let conv = w.take(s.weight, &[cout, cin, kernel[0], kernel[1]])?;
        let bn = |field: &str| w.take(&format!("{}.{field}", s.bn), &[cout]);
        let (gamma, beta, mean, var) = (
            bn("weight")?,
            bn("bias")?,
            bn("running_mean")?,
            bn("running_var")?,
        );
        let per_out = cin * kernel[0] * kernel[1];
        let scale: Vec<f64> = (0..cout)
            .map(|o| gamma[o] / (var[o] + s.eps).sqrt())
            .collect();
        let folded: Vec<f32> = conv
            .iter()
            .enumerate()
            .map(|(i, v)| (v * scale[i / per_out]) as f32)
            .collect();
        let bias: Vec<f32> = (0..cout)
            .map(|o| (beta[o] - mean[o] * scale[o]) as f32)
            .collect();
        Ok(ConvBn {
            weight: Tensor::from_data(
                TensorData::new(folded, [cout, cin, kernel[0], kernel[1]]),
                device,
            ),
            bias: Tensor::from_data(TensorData::new(bias, [cout]), device),
            options: ConvOptions::new([s.stride, s.stride], s.padding, [1, 1], 1),
        })
    }

    /// Convolution, BatchNorm, ReLU.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d_relu(
            x,
            self.weight.clone(),
            self.bias.clone(),
            self.options.clone(),
        )
    }

    /// Convolution and BatchNorm, no ReLU (before a residual sum).
    pub fn linear(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        )
    }

    /// This 1×1 convolution's branch after the 3×3 average pool, `forward(avg_pool3(x))`,
    /// computed as `relu(avg_pool3(conv(x) + bias))`: the same map, since the
    /// convolution mixes channels pixel by pixel, the pool mixes pixels channel by
    /// channel, and the average of a constant bias is the bias. The pool then runs on
    /// the branch's 32–192 output channels instead of its 192–2048 inputs.
    pub fn after_avg_pool(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        debug_assert_eq!(self.weight.dims()[2..], [1, 1]);
        burn::tensor::activation::relu(avg_pool3(self.linear(x)))
    }
}
