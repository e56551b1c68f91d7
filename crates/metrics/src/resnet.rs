//! torchvision's ResNet (v1.5: the stride in each bottleneck's 3×3 convolution) as a
//! feature network: the 2048-d average-pooled features that its `fc` layer would take.
//! SwAV's released ResNet-50 has this layout (`facebookresearch/swav`'s hub model is
//! torchvision's `resnet50` with SwAV's weights; its projection head and prototypes
//! are not used). BatchNorm (eps 1e-5) is folded into each convolution.

use burn::prelude::*;
use kernels::{Kernels, max_pool3};
use serde::{Deserialize, Serialize};

use super::MetricError;
use super::conv_bn::{ConvBn, ConvSpec};
use super::tensors::Tensors;

const BN_EPS: f64 = 1e-5;

/// The shape of a torchvision ResNet built from bottlenecks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetShape {
    /// Bottlenecks in each of the four stages (ResNet-50: 3, 4, 6, 3).
    pub blocks: [usize; 4],
    /// torchvision's `width_per_group`: the 3×3 convolutions of stage s have
    /// `64·2^s·width/64` channels (64).
    pub width: usize,
    /// Output channels of a bottleneck per input plane of its stage (4).
    pub expansion: usize,
}

impl ResNetShape {
    pub const RESNET50: ResNetShape = ResNetShape {
        blocks: [3, 4, 6, 3],
        width: 64,
        expansion: 4,
    };

    /// Length of the pooled features.
    pub fn features(&self) -> usize {
        512 * self.expansion
    }
}

/// One bottleneck: 1×1, 3×3 (with the stride), 1×1, and the shortcut.
#[derive(Debug, Clone)]
struct Bottleneck<B: Kernels> {
    convs: [ConvBn<B>; 3],
    downsample: Option<ConvBn<B>>,
}

impl<B: Kernels> Bottleneck<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [c1, c2, c3] = &self.convs;
        let shortcut = match &self.downsample {
            Some(d) => d.linear(x.clone()),
            None => x.clone(),
        };
        let y = c3.linear(c2.forward(c1.forward(x)));
        burn::tensor::activation::relu(y + shortcut)
    }
}

#[derive(Debug, Clone)]
pub struct ResNet<B: Kernels> {
    stem: ConvBn<B>,
    blocks: Vec<Bottleneck<B>>,
    features: usize,
}

impl<B: Kernels> ResNet<B> {
    pub fn load(
        w: &dyn Tensors,
        shape: ResNetShape,
        device: &B::Device,
    ) -> Result<Self, MetricError> {
        let conv = |weight: &str, bn: &str, cin, cout, k: usize, stride, pad: usize| {
            let spec = ConvSpec {
                weight,
                bn,
                eps: BN_EPS,
                cin,
                cout,
                kernel: [k, k],
                stride,
                padding: [pad, pad],
            };
            ConvBn::load(w, spec, device)
        };
        let stem = conv("conv1.weight", "bn1", 3, 64, 7, 2, 3)?;
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, &count) in shape.blocks.iter().enumerate() {
            let planes = 64 << stage;
            let inner = planes * shape.width / 64;
            let cout = planes * shape.expansion;
            for b in 0..count {
                let n = format!("layer{}.{b}", stage + 1);
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let c = |i: usize, cin, cout, k, stride, pad| {
                    conv(
                        &format!("{n}.conv{i}.weight"),
                        &format!("{n}.bn{i}"),
                        cin,
                        cout,
                        k,
                        stride,
                        pad,
                    )
                };
                let downsample = if b == 0 && (stride != 1 || cin != cout) {
                    Some(conv(
                        &format!("{n}.downsample.0.weight"),
                        &format!("{n}.downsample.1"),
                        cin,
                        cout,
                        1,
                        stride,
                        0,
                    )?)
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    convs: [
                        c(1, cin, inner, 1, 1, 0)?,
                        c(2, inner, inner, 3, stride, 1)?,
                        c(3, inner, cout, 1, 1, 0)?,
                    ],
                    downsample,
                });
                cin = cout;
            }
        }
        Ok(ResNet {
            stem,
            blocks,
            features: shape.features(),
        })
    }

    /// Normalized images `[n, 3, h, w]` → pooled features `[n, features]`.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let [n, ..] = x.dims();
        let x = max_pool3(self.stem.forward(x), 2, 1);
        let x = self.blocks.iter().fold(x, |t, b| b.forward(t));
        x.mean_dim(3).mean_dim(2).reshape([n, self.features])
    }
}
