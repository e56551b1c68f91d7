//! The FID Inception-v3 network of pytorch-fid, in burn: torchvision's Inception-v3 with
//! 1008 classes and pytorch-fid's blocks (`FIDInceptionA`, `C`, `E_1`, `E_2`: average
//! pools that do not count padding, and a max pool in the last block), loaded from the
//! released weight file (`pt_inception-2015-12-05-6726825d.pth`, a legacy PyTorch pickle).
//!
//! Every convolution is followed by BatchNorm (eps 1e-3) and ReLU; since the network only
//! ever runs in inference, each BatchNorm is folded into its convolution when loading
//! (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), computed in f64).
//!
//! Input: images in [0, 1], NCHW, any size; they are resized to 299×299 bilinearly
//! (align_corners = false, no antialiasing) and mapped to [-1, 1], as pytorch-fid does,
//! or with PIL's bicubic ([`Resizer::Clean`]).
//! Output: the 2048-d pool features and the 1008 logits (fc with bias).

use std::path::Path;

use burn::prelude::*;

use kernels::{Kernels, max_pool3};

use super::MetricError;
use super::conv_bn::{ConvBn, ConvSpec};
use super::resize::{Resizer, resize};
use super::tensors::{Tensors, WeightFile};
use torchfile::TorchError;

impl From<TorchError> for MetricError {
    fn from(e: TorchError) -> MetricError {
        MetricError::format(e.file, e.message)
    }
}

pub const FEATURES: usize = 2048;
pub const CLASSES: usize = 1008;
const SIZE: usize = 299;
const BN_EPS: f64 = 1e-3;

/// Convolutions applied one after the other.
fn chain<B: Kernels>(convs: &[ConvBn<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
    convs.iter().fold(x, |t, conv| conv.forward(t))
}

fn max3s2<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool3(x, 2, 0)
}

/// Loads the convolutions of a block, named `{block}.{branch}`.
struct Loader<'a, B: Kernels> {
    w: &'a WeightFile,
    device: &'a B::Device,
}

impl<B: Kernels> Loader<'_, B> {
    fn conv(
        &self,
        name: &str,
        cin: usize,
        cout: usize,
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
    ) -> Result<ConvBn<B>, MetricError> {
        let spec = ConvSpec {
            weight: &format!("{name}.conv.weight"),
            bn: &format!("{name}.bn"),
            eps: BN_EPS,
            cin,
            cout,
            kernel,
            stride,
            padding,
        };
        ConvBn::load(self.w, spec, self.device)
    }

    fn square(
        &self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<ConvBn<B>, MetricError> {
        self.conv(name, cin, cout, [k, k], stride, [pad, pad])
    }
}

/// FIDInceptionA (Mixed_5b–5d).
#[derive(Debug, Clone)]
struct BlockA<B: Kernels> {
    b1x1: ConvBn<B>,
    b5x5: [ConvBn<B>; 2],
    b3x3dbl: [ConvBn<B>; 3],
    pool: ConvBn<B>,
}

impl<B: Kernels> BlockA<B> {
    fn load(l: &Loader<B>, n: &str, cin: usize, pool_features: usize) -> Result<Self, MetricError> {
        Ok(BlockA {
            b1x1: l.square(&format!("{n}.branch1x1"), cin, 64, 1, 1, 0)?,
            b5x5: [
                l.square(&format!("{n}.branch5x5_1"), cin, 48, 1, 1, 0)?,
                l.square(&format!("{n}.branch5x5_2"), 48, 64, 5, 1, 2)?,
            ],
            b3x3dbl: [
                l.square(&format!("{n}.branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                l.square(&format!("{n}.branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                l.square(&format!("{n}.branch3x3dbl_3"), 96, 96, 3, 1, 1)?,
            ],
            pool: l.square(&format!("{n}.branch_pool"), cin, pool_features, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.b1x1.forward(x.clone());
        let b = self.b5x5[1].forward(self.b5x5[0].forward(x.clone()));
        let c = chain(&self.b3x3dbl, x.clone());
        let d = self.pool.after_avg_pool(x);
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// torchvision's InceptionB (Mixed_6a).
#[derive(Debug, Clone)]
struct BlockB<B: Kernels> {
    b3x3: ConvBn<B>,
    b3x3dbl: [ConvBn<B>; 3],
}

impl<B: Kernels> BlockB<B> {
    fn load(l: &Loader<B>, n: &str, cin: usize) -> Result<Self, MetricError> {
        Ok(BlockB {
            b3x3: l.square(&format!("{n}.branch3x3"), cin, 384, 3, 2, 0)?,
            b3x3dbl: [
                l.square(&format!("{n}.branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                l.square(&format!("{n}.branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                l.square(&format!("{n}.branch3x3dbl_3"), 96, 96, 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.b3x3.forward(x.clone());
        let b = chain(&self.b3x3dbl, x.clone());
        Tensor::cat(vec![a, b, max3s2(x)], 1)
    }
}

/// FIDInceptionC (Mixed_6b–6e).
#[derive(Debug, Clone)]
struct BlockC<B: Kernels> {
    b1x1: ConvBn<B>,
    b7x7: [ConvBn<B>; 3],
    b7x7dbl: [ConvBn<B>; 5],
    pool: ConvBn<B>,
}

impl<B: Kernels> BlockC<B> {
    fn load(l: &Loader<B>, n: &str, c7: usize) -> Result<Self, MetricError> {
        let (row, col) = ([1, 7], [7, 1]);
        let (prow, pcol) = ([0, 3], [3, 0]);
        Ok(BlockC {
            b1x1: l.square(&format!("{n}.branch1x1"), 768, 192, 1, 1, 0)?,
            b7x7: [
                l.square(&format!("{n}.branch7x7_1"), 768, c7, 1, 1, 0)?,
                l.conv(&format!("{n}.branch7x7_2"), c7, c7, row, 1, prow)?,
                l.conv(&format!("{n}.branch7x7_3"), c7, 192, col, 1, pcol)?,
            ],
            b7x7dbl: [
                l.square(&format!("{n}.branch7x7dbl_1"), 768, c7, 1, 1, 0)?,
                l.conv(&format!("{n}.branch7x7dbl_2"), c7, c7, col, 1, pcol)?,
                l.conv(&format!("{n}.branch7x7dbl_3"), c7, c7, row, 1, prow)?,
                l.conv(&format!("{n}.branch7x7dbl_4"), c7, c7, col, 1, pcol)?,
                l.conv(&format!("{n}.branch7x7dbl_5"), c7, 192, row, 1, prow)?,
            ],
            pool: l.square(&format!("{n}.branch_pool"), 768, 192, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.b1x1.forward(x.clone());
        let b = chain(&self.b7x7, x.clone());
        let c = chain(&self.b7x7dbl, x.clone());
        let d = self.pool.after_avg_pool(x);
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// torchvision's InceptionD (Mixed_7a).
#[derive(Debug, Clone)]
struct BlockD<B: Kernels> {
    b3x3: [ConvBn<B>; 2],
    b7x7x3: [ConvBn<B>; 4],
}

impl<B: Kernels> BlockD<B> {
    fn load(l: &Loader<B>, n: &str) -> Result<Self, MetricError> {
        Ok(BlockD {
            b3x3: [
                l.square(&format!("{n}.branch3x3_1"), 768, 192, 1, 1, 0)?,
                l.square(&format!("{n}.branch3x3_2"), 192, 320, 3, 2, 0)?,
            ],
            b7x7x3: [
                l.square(&format!("{n}.branch7x7x3_1"), 768, 192, 1, 1, 0)?,
                l.conv(&format!("{n}.branch7x7x3_2"), 192, 192, [1, 7], 1, [0, 3])?,
                l.conv(&format!("{n}.branch7x7x3_3"), 192, 192, [7, 1], 1, [3, 0])?,
                l.square(&format!("{n}.branch7x7x3_4"), 192, 192, 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = chain(&self.b3x3, x.clone());
        let b = chain(&self.b7x7x3, x.clone());
        Tensor::cat(vec![a, b, max3s2(x)], 1)
    }
}

/// FIDInceptionE_1 (Mixed_7b, average pool) and FIDInceptionE_2 (Mixed_7c, max pool).
#[derive(Debug, Clone)]
struct BlockE<B: Kernels> {
    b1x1: ConvBn<B>,
    b3x3_1: ConvBn<B>,
    b3x3_2: [ConvBn<B>; 2],
    b3x3dbl_12: [ConvBn<B>; 2],
    b3x3dbl_3: [ConvBn<B>; 2],
    pool: ConvBn<B>,
    max_pool: bool,
}

impl<B: Kernels> BlockE<B> {
    fn load(l: &Loader<B>, n: &str, cin: usize, max_pool: bool) -> Result<Self, MetricError> {
        Ok(BlockE {
            b1x1: l.square(&format!("{n}.branch1x1"), cin, 320, 1, 1, 0)?,
            b3x3_1: l.square(&format!("{n}.branch3x3_1"), cin, 384, 1, 1, 0)?,
            b3x3_2: [
                l.conv(&format!("{n}.branch3x3_2a"), 384, 384, [1, 3], 1, [0, 1])?,
                l.conv(&format!("{n}.branch3x3_2b"), 384, 384, [3, 1], 1, [1, 0])?,
            ],
            b3x3dbl_12: [
                l.square(&format!("{n}.branch3x3dbl_1"), cin, 448, 1, 1, 0)?,
                l.square(&format!("{n}.branch3x3dbl_2"), 448, 384, 3, 1, 1)?,
            ],
            b3x3dbl_3: [
                l.conv(&format!("{n}.branch3x3dbl_3a"), 384, 384, [1, 3], 1, [0, 1])?,
                l.conv(&format!("{n}.branch3x3dbl_3b"), 384, 384, [3, 1], 1, [1, 0])?,
            ],
            pool: l.square(&format!("{n}.branch_pool"), cin, 192, 1, 1, 0)?,
            max_pool,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.b1x1.forward(x.clone());
        let t = self.b3x3_1.forward(x.clone());
        let b = Tensor::cat(
            vec![self.b3x3_2[0].forward(t.clone()), self.b3x3_2[1].forward(t)],
            1,
        );
        let t = chain(&self.b3x3dbl_12, x.clone());
        let c = Tensor::cat(
            vec![
                self.b3x3dbl_3[0].forward(t.clone()),
                self.b3x3dbl_3[1].forward(t),
            ],
            1,
        );
        let d = if self.max_pool {
            self.pool.forward(max_pool3(x, 1, 1))
        } else {
            self.pool.after_avg_pool(x)
        };
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// The whole network.
#[derive(Debug, Clone)]
pub struct FidInception<B: Kernels> {
    stem: [ConvBn<B>; 5],
    mixed_5: [BlockA<B>; 3],
    mixed_6a: BlockB<B>,
    mixed_6: [BlockC<B>; 4],
    mixed_7a: BlockD<B>,
    mixed_7b: BlockE<B>,
    mixed_7c: BlockE<B>,
    /// The final fc layer runs on the host in f64: some GPU matmuls round f32 inputs
    /// to TF32, which would cost the logits three digits. `[2048, 1008]`.
    fc_weight: faer::Mat<f64>,
    fc_bias: Vec<f64>,
    /// How images of another size are brought to 299×299.
    resizer: Resizer,
}

/// Features of a batch: `pool3` (n × 2048) and `logits` (n × 1008), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub pool3: Vec<f32>,
    pub logits: Vec<f32>,
}

impl<B: Kernels> FidInception<B> {
    /// Loads the network from a weight file in pytorch-fid's format, naming any tensor
    /// that is missing or has the wrong shape.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, MetricError> {
        let w = WeightFile::open(path)?;
        let l = Loader::<B> { w: &w, device };
        Ok(FidInception {
            stem: [
                l.square("Conv2d_1a_3x3", 3, 32, 3, 2, 0)?,
                l.square("Conv2d_2a_3x3", 32, 32, 3, 1, 0)?,
                l.square("Conv2d_2b_3x3", 32, 64, 3, 1, 1)?,
                l.square("Conv2d_3b_1x1", 64, 80, 1, 1, 0)?,
                l.square("Conv2d_4a_3x3", 80, 192, 3, 1, 0)?,
            ],
            mixed_5: [
                BlockA::load(&l, "Mixed_5b", 192, 32)?,
                BlockA::load(&l, "Mixed_5c", 256, 64)?,
                BlockA::load(&l, "Mixed_5d", 288, 64)?,
            ],
            mixed_6a: BlockB::load(&l, "Mixed_6a", 288)?,
            mixed_6: [
                BlockC::load(&l, "Mixed_6b", 128)?,
                BlockC::load(&l, "Mixed_6c", 160)?,
                BlockC::load(&l, "Mixed_6d", 160)?,
                BlockC::load(&l, "Mixed_6e", 192)?,
            ],
            mixed_7a: BlockD::load(&l, "Mixed_7a")?,
            mixed_7b: BlockE::load(&l, "Mixed_7b", 1280, false)?,
            mixed_7c: BlockE::load(&l, "Mixed_7c", 2048, true)?,
            fc_weight: {
                let v = w.take("fc.weight", &[CLASSES, FEATURES])?;
                faer::Mat::from_fn(FEATURES, CLASSES, |i, j| v[j * FEATURES + i])
            },
            fc_bias: w.take("fc.bias", &[CLASSES])?,
            resizer: Resizer::Legacy,
        })
    }

    /// The network resizing its inputs with `resizer` (pytorch-fid's bilinear unless
    /// told).
    pub fn with_resizer(self, resizer: Resizer) -> Self {
        FidInception { resizer, ..self }
    }

    /// Images in [0, 1], `[n, 3, h, w]` → pool features `[n, 2048]`.
    pub fn pool3(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let [n, ..] = images.dims();
        let x = resize(images, [SIZE, SIZE], self.resizer) * 2.0 - 1.0;
        let [c1, c2, c3, c4, c5] = &self.stem;
        let x = c3.forward(c2.forward(c1.forward(x))); // [n, 64, 147, 147]
        let x = max3s2(x); // [n, 64, 73, 73]
        let x = c5.forward(c4.forward(x)); // [n, 192, 71, 71]
        let x = max3s2(x); // [n, 192, 35, 35]
        let x = self.mixed_5.iter().fold(x, |t, b| b.forward(t)); // [n, 288, 35, 35]
        let x = self.mixed_6a.forward(x); // [n, 768, 17, 17]
        let x = self.mixed_6.iter().fold(x, |t, b| b.forward(t));
        let x = self.mixed_7a.forward(x); // [n, 1280, 8, 8]
        let x = self.mixed_7c.forward(self.mixed_7b.forward(x)); // [n, 2048, 8, 8]
        x.mean_dim(3).mean_dim(2).reshape([n, FEATURES])
    }

    /// Pool features and logits (fc with bias) of a batch, on the host.
    pub fn forward(&self, images: Tensor<B, 4>) -> Result<Outputs, MetricError> {
        let pool3 = self
            .pool3(images)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| MetricError::Invalid(format!("reading features back: {e:?}")))?;
        let n = pool3.len() / FEATURES;
        let features = faer::Mat::from_fn(n, FEATURES, |i, j| pool3[i * FEATURES + j] as f64);
        let mut logits = faer::Mat::from_fn(n, CLASSES, |_, j| self.fc_bias[j]);
        faer::linalg::matmul::matmul(
            logits.as_mut(),
            faer::Accum::Add,
            features.as_ref(),
            self.fc_weight.as_ref(),
            1.0,
            faer::Par::Seq,
        );
        let logits = (0..n * CLASSES)
            .map(|k| logits[(k / CLASSES, k % CLASSES)] as f32)
            .collect();
        Ok(Outputs { pool3, logits })
    }

    /// The fc layer's bias, to take logits without it.
    pub fn fc_bias(&self) -> &[f64] {
        &self.fc_bias
    }
}

/// RGB u8 images (HWC, all `height × width`) as a `[n, 3, h, w]` tensor in [0, 1].
pub fn images_tensor<B: Kernels>(
    pixels: &[u8],
    n: usize,
    height: usize,
    width: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let plane = height * width;
    let mut data = vec![0f32; n * 3 * plane];
    for i in 0..n {
        let src = &pixels[i * 3 * plane..(i + 1) * 3 * plane];
        let dst = &mut data[i * 3 * plane..(i + 1) * 3 * plane];
        for p in 0..plane {
            for c in 0..3 {
                dst[c * plane + p] = src[p * 3 + c] as f32 / 255.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [n, 3, height, width]), device)
}
