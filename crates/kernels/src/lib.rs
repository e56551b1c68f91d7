//! The operations our networks spend their time in, with CPU versions of our own where
//! burn-flex is slow: the convolution and its two gradients ([`conv`], im2col + GEMM;
//! burn-flex computes the weight gradient as a convolution whose output is the kernel,
//! a few pixels, which its GEMM tiles badly, and its forward pass converts every input
//! to NHWC on one thread; see `benches/conv.rs` and `benches/metrics.rs`), the 3×3
//! pools of the FID network ([`pool`]), and the per-channel affine map `x·a + b` behind
//! BatchNorm and biases (burn-flex broadcasts through a generic strided iterator;
//! [`affine`] runs plane by plane). They enter autodiff as custom operations with their
//! own backward passes. Other backends (CUDA) use burn's operations.
//!
//! Everything that runs a network is generic over [`Kernels`] rather than burn's
//! `Backend`; every backend this build can run on implements it.

mod affine;
mod autodiff;
mod conv;
#[cfg(feature = "counted")]
pub mod counted;
pub mod device;
mod flex;
pub mod memory;
mod pool;
mod thin;
mod wide;

/// The backend the parity tests of every crate run on: burn-flex, or CUDA device 0 in
/// builds with the `cuda` feature, so that the same tests check the GPU path on a
/// machine that has one.
#[cfg(feature = "cuda")]
pub type TestBackend = burn::backend::Cuda;
/// In builds with the `wgpu` feature (and not `cuda`): burn's wgpu backend, fused.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type TestBackend = burn::backend::Wgpu;
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
pub type TestBackend = burn::backend::Flex;

/// burn's wgpu backend without fusion: one kernel per operation.
#[cfg(feature = "wgpu")]
pub type WgpuUnfused =
    burn::backend::wgpu::CubeBackend<burn::backend::wgpu::WgpuRuntime, f32, i32, u32>;

use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};
use burn::tensor::{TensorMetadata, TensorPrimitive};

fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// [`Kernels::upsample2`] in burn's operations: a broadcast, copied out.
fn upsample2_by_broadcast<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let x = wrap::<B, 4>(x);
    let [n, c, h, w] = x.dims();
    unwrap(
        x.reshape([n, c, h, 1, w, 1])
            .expand([n, c, h, 2, w, 2])
            .reshape([n, c, 2 * h, 2 * w]),
    )
}

/// A backend with the operations below; the defaults are burn's.
pub trait Kernels: Backend {
    /// Whether burn's fusion compiles this backend's operations together (its GPU
    /// backends). burn 0.21's fused matmul computes some small products wrong when
    /// autodiff tracks them; code that meets them takes another road where this holds.
    const FUSED: bool = false;

    /// Convolution (PyTorch semantics, weight `[out, in, kh, kw]`).
    fn conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, w, bias, options)
    }

    /// `relu(conv(x, w) + bias)`, in one pass over the output where the backend can.
    fn conv_relu(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::relu(Self::conv(x, w, Some(bias), options))
    }

    /// The gradient of a convolution's bias: `dy` summed over images and pixels.
    fn conv_grad_bias(dy: FloatTensor<Self>) -> FloatTensor<Self> {
        let dy = wrap::<Self, 4>(dy);
        let [n, c, h, w] = dy.dims();
        unwrap(dy.reshape([n, c, h * w]).sum_dim(2).sum_dim(0).reshape([c]))
    }

    fn conv_grad_x(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, w, dy, options)
    }

    fn conv_grad_w(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, w, dy, options)
    }

    /// Transposed convolution (weight `[in, out, kh, kw]`), without bias: the adjoint of
    /// the convolution with the same weight, stride and padding.
    fn deconv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let transposed = ConvTransposeOptions::new(
            options.stride,
            options.padding,
            [0, 0],
            options.dilation,
            options.groups,
        );
        Self::conv_transpose2d(x, w, None, transposed)
    }

    /// `x·w + bias` for x `[m, k]`, w `[k, n]` and bias `[n]`: a linear layer on rows.
    fn linear_rows(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let y = wrap::<Self, 2>(x).matmul(wrap::<Self, 2>(w));
        unwrap(y + wrap::<Self, 1>(bias).unsqueeze::<2>())
    }

    /// 3×3 average pool, stride 1, padding 1, the padding not counted.
    fn box3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false)
    }

    /// 3×3 max pool with the given stride and padding.
    fn max3(x: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::max_pool2d(x, [3, 3], [stride; 2], [padding; 2], [1, 1], false)
    }

    /// Nearest-neighbour upsampling by 2: each pixel becomes a 2×2 block.
    fn upsample2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        upsample2_by_broadcast::<Self>(x)
    }

    /// The mean of each 2×2 block (average pool, kernel and stride 2); an odd last row
    /// or column is left out.
    fn mean2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false)
    }

    /// `x·a + b` for x `[n, c, h, w]`, a and b `[rows, c]` (rows 1 or n).
    fn affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [rows, c] = a.shape().dims::<2>();
        let x = wrap::<Self, 4>(x);
        let a = wrap::<Self, 2>(a).reshape([rows, c, 1, 1]);
        let b = wrap::<Self, 2>(b).reshape([rows, c, 1, 1]);
        unwrap(x * a + b)
    }

    /// (∂x, ∂a, ∂b) of [`Kernels::affine`].
    fn affine_grads(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [rows, c] = a.shape().dims::<2>();
        let x = wrap::<Self, 4>(x);
        let dy = wrap::<Self, 4>(dy);
        let [n, _, h, w] = x.dims();
        let dx = dy.clone() * wrap::<Self, 2>(a).reshape([rows, c, 1, 1]);
        let per_image = |t: Tensor<Self, 4>| {
            let t = t.reshape([n, c, h * w]).sum_dim(2).reshape([n, c]);
            if rows == 1 { t.sum_dim(0) } else { t }
        };
        let da = per_image(dy.clone() * x);
        let db = per_image(dy);
        (unwrap(dx), unwrap(da), unwrap(db))
    }
}

/// `conv2d(x, weight) + bias`, with PyTorch's semantics (weight `[out, in, kh, kw]`).
pub fn conv2d<B: Kernels>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    wrap(B::conv(
        unwrap(x),
        unwrap(weight),
        bias.map(unwrap),
        options,
    ))
}

/// `relu(conv2d(x, weight) + bias)`.
pub fn conv2d_relu<B: Kernels>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    wrap(B::conv_relu(
        unwrap(x),
        unwrap(weight),
        unwrap(bias),
        options,
    ))
}

/// The transposed convolution of PyTorch's `ConvTranspose2d` (weight `[in, out, kh, kw]`,
/// no output padding) plus bias.
pub fn conv_transpose2d<B: Kernels>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    stride: usize,
    padding: usize,
) -> Tensor<B, 4> {
    let y = deconv2d(x, weight, stride, padding);
    let o = bias.dims()[0];
    let ones = Tensor::ones([1, o], &bias.device());
    channel_affine(y, ones, bias.reshape([1, o]))
}

/// The transposed convolution without bias (weight `[in, out, kh, kw]`, no output
/// padding).
pub fn deconv2d<B: Kernels>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    stride: usize,
    padding: usize,
) -> Tensor<B, 4> {
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    wrap::<B, 4>(B::deconv(unwrap(x), unwrap(weight), options))
}

/// `x·w + bias` (x `[m, k]`, w `[k, n]`, bias `[n]`): a linear layer applied to rows.
pub fn linear<B: Kernels>(x: Tensor<B, 2>, w: Tensor<B, 2>, bias: Tensor<B, 1>) -> Tensor<B, 2> {
    wrap(B::linear_rows(unwrap(x), unwrap(w), unwrap(bias)))
}

/// 3×3 average pool, stride 1, padding 1, not counting the padding
/// (`avg_pool2d(x, 3, 1, 1, count_include_pad=False)`).
pub fn avg_pool3<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    wrap(B::box3(unwrap(x)))
}

/// 3×3 max pool (`max_pool2d(x, 3, stride, padding)`).
pub fn max_pool3<B: Kernels>(x: Tensor<B, 4>, stride: usize, padding: usize) -> Tensor<B, 4> {
    wrap(B::max3(unwrap(x), stride, padding))
}

/// Nearest-neighbour upsampling by 2 (`F.interpolate(scale_factor=2, mode='nearest')`).
pub fn upsample2<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    wrap(B::upsample2(unwrap(x)))
}

/// 2×2 average pool with stride 2 (`F.avg_pool2d(x, 2)`).
pub fn mean2<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    wrap(B::mean2(unwrap(x)))
}

/// `x·a + b` per channel: x `[n, c, h, w]`, a and b `[1, c]` (shared) or `[n, c]`.
pub fn channel_affine<B: Kernels>(
    x: Tensor<B, 4>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Tensor<B, 4> {
    wrap(B::affine(unwrap(x), unwrap(a), unwrap(b)))
}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {
    const FUSED: bool = true;
}
#[cfg(feature = "wgpu")]
impl Kernels for burn::backend::Wgpu {
    const FUSED: bool = true;
}
#[cfg(feature = "wgpu")]
impl Kernels for WgpuUnfused {}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn_autodiff::Autodiff;
    use rng::Rng;

    type Ad = Autodiff<Flex>;

    fn random<const D: usize>(rng: &mut Rng, shape: [usize; D]) -> Tensor<Ad, D> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.f32() - 0.5).collect();
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    /// A fresh leaf with the same values: a backward pass consumes its graph.
    fn leaf<const D: usize>(t: &Tensor<Ad, D>) -> Tensor<Ad, D> {
        Tensor::from_data(t.to_data(), &Default::default()).require_grad()
    }

    fn close<const D: usize>(what: &str, p: Tensor<Flex, D>, q: Tensor<Flex, D>) {
        let p = p.into_data().to_vec::<f32>().unwrap();
        let q = q.into_data().to_vec::<f32>().unwrap();
        let worst = p
            .iter()
            .zip(&q)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{what} differs by {worst}");
    }

    /// Our convolution and burn's agree in value and in every gradient.
    #[test]
    fn convolution_matches_burn_forward_and_backward() {
        let mut rng = Rng::new(9);
        let (x, w, b) = (
            random(&mut rng, [2, 3, 9, 8]),
            random(&mut rng, [5, 3, 3, 3]),
            random(&mut rng, [5]),
        );
        let r = random(&mut rng, [2, 5, 5, 8]);
        let options = ConvOptions::new([2, 1], [1, 1], [1, 1], 1);
        let (x1, w1, b1) = (leaf(&x), leaf(&w), leaf(&b));
        let (x2, w2, b2) = (leaf(&x), leaf(&w), leaf(&b));
        let ours =
            (conv2d(x1.clone(), w1.clone(), Some(b1.clone()), options.clone()) * r.clone()).sum();
        let theirs =
            (burn::tensor::module::conv2d(x2.clone(), w2.clone(), Some(b2.clone()), options) * r)
                .sum();
        close("value", ours.clone().inner(), theirs.clone().inner());
        let (ga, gb) = (ours.backward(), theirs.backward());
        close("dx", x1.grad(&ga).unwrap(), x2.grad(&gb).unwrap());
        close("dw", w1.grad(&ga).unwrap(), w2.grad(&gb).unwrap());
        close("db", b1.grad(&ga).unwrap(), b2.grad(&gb).unwrap());
    }

    /// Our transposed convolution and burn's agree in value and in every gradient.
    #[test]
    fn transposed_convolution_matches_burn() {
        let mut rng = Rng::new(5);
        let (x, w, b) = (
            random(&mut rng, [2, 4, 4, 3]),
            random(&mut rng, [4, 3, 4, 4]),
            random(&mut rng, [3]),
        );
        let r = random(&mut rng, [2, 3, 8, 6]);
        let (x1, w1, b1) = (leaf(&x), leaf(&w), leaf(&b));
        let (x2, w2, b2) = (leaf(&x), leaf(&w), leaf(&b));
        let ours = (conv_transpose2d(x1.clone(), w1.clone(), b1.clone(), 2, 1) * r.clone()).sum();
        let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let theirs = (burn::tensor::module::conv_transpose2d(
            x2.clone(),
            w2.clone(),
            Some(b2.clone()),
            options,
        ) * r)
            .sum();
        close("value", ours.clone().inner(), theirs.clone().inner());
        let (ga, gb) = (ours.backward(), theirs.backward());
        close("dx", x1.grad(&ga).unwrap(), x2.grad(&gb).unwrap());
        close("dw", w1.grad(&ga).unwrap(), w2.grad(&gb).unwrap());
        close("db", b1.grad(&ga).unwrap(), b2.grad(&gb).unwrap());
    }

    /// Our 3×3 average pool and burn's agree.
    #[test]
    fn box_pool_matches_burn() {
        let mut rng = Rng::new(8);
        let x = random(&mut rng, [2, 3, 7, 5]).inner();
        let ours = avg_pool3(x.clone());
        let theirs = burn::tensor::module::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false);
        close("pool", ours, theirs);
    }

    /// Our 3×3 max pool and burn's agree, for the strides and paddings of the network
    /// and odd sizes whose last window is cut.
    #[test]
    fn max_pool_matches_burn() {
        let mut rng = Rng::new(6);
        for (h, w, stride, padding) in [(7, 5, 2, 0), (8, 9, 2, 0), (6, 4, 1, 1), (5, 7, 2, 1)] {
            let x = random(&mut rng, [2, 3, h, w]).inner();
            let ours = max_pool3(x.clone(), stride, padding);
            let theirs = burn::tensor::module::max_pool2d(
                x,
                [3, 3],
                [stride; 2],
                [padding; 2],
                [1, 1],
                false,
            );
            assert_eq!(ours.dims(), theirs.dims());
            close("max pool", ours, theirs);
        }
    }

    /// Our 2× upsampling and 2×2 mean agree with burn's in value and gradient, odd
    /// sizes included (the mean leaves their last row and column out).
    #[test]
    fn upsampling_and_block_means_match_burn() {
        let mut rng = Rng::new(2);
        for (h, w) in [(4, 6), (5, 3), (1, 2)] {
            let x = random(&mut rng, [2, 3, h, w]);
            let r = random(&mut rng, [2, 3, 2 * h, 2 * w]);
            let (x1, x2) = (leaf(&x), leaf(&x));
            let ours = (upsample2(x1.clone()) * r.clone()).sum();
            let broadcast = wrap::<Ad, 4>(upsample2_by_broadcast::<Ad>(unwrap(x2.clone())));
            let theirs = (broadcast * r).sum();
            close("upsample", ours.clone().inner(), theirs.clone().inner());
            let (ga, gb) = (ours.backward(), theirs.backward());
            close("upsample dx", x1.grad(&ga).unwrap(), x2.grad(&gb).unwrap());

            let r = random(&mut rng, [2, 3, h / 2, w / 2]);
            let (x1, x2) = (leaf(&x), leaf(&x));
            let ours = (mean2(x1.clone()) * r.clone()).sum();
            let theirs =
                (burn::tensor::module::avg_pool2d(x2.clone(), [2, 2], [2, 2], [0, 0], true, false)
                    * r)
                    .sum();
            close("mean", ours.clone().inner(), theirs.clone().inner());
            let (ga, gb) = (ours.backward(), theirs.backward());
            close("mean dx", x1.grad(&ga).unwrap(), x2.grad(&gb).unwrap());
        }
    }

    /// The affine map and broadcasting arithmetic agree, shared or per image.
    #[test]
    fn affine_matches_broadcasting() {
        let mut rng = Rng::new(3);
        let x = random(&mut rng, [3, 4, 5, 2]);
        for rows in [1, 3] {
            let (a, b) = (random(&mut rng, [rows, 4]), random(&mut rng, [rows, 4]));
            let r = random(&mut rng, [3, 4, 5, 2]);
            let (x1, a1, b1) = (leaf(&x), leaf(&a), leaf(&b));
            let (x2, a2, b2) = (leaf(&x), leaf(&a), leaf(&b));
            let ours = (channel_affine(x1.clone(), a1.clone(), b1.clone()) * r.clone()).sum();
            let theirs = ((x2.clone() * a2.clone().reshape([rows, 4, 1, 1])
                + b2.clone().reshape([rows, 4, 1, 1]))
                * r)
                .sum();
            close("value", ours.clone().inner(), theirs.clone().inner());
            let (ga, gb) = (ours.backward(), theirs.backward());
            close("dx", x1.grad(&ga).unwrap(), x2.grad(&gb).unwrap());
            close("da", a1.grad(&ga).unwrap(), a2.grad(&gb).unwrap());
            close("db", b1.grad(&ga).unwrap(), b2.grad(&gb).unwrap());
        }
    }

    #[test]
    fn linear_rows_match_matmul_and_bias() {
        let mut rng = Rng::new(5);
        for (m, k, n) in [(1, 1, 1), (7, 33, 5), (130, 64, 96)] {
            let x = random(&mut rng, [m, k]).inner();
            // A transposed view, as a weight often is.
            let w = random(&mut rng, [n, k]).inner().transpose();
            let b = random(&mut rng, [n]).inner();
            let theirs = x.clone().matmul(w.clone()) + b.clone().unsqueeze();
            close("linear", linear(x, w, b), theirs);
        }
    }
}
