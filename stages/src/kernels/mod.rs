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
mod conv;
mod pool;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::ops::{ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensor, ModuleOps};
use burn::tensor::{TensorMetadata, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_autodiff::NodeId;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use conv::Geometry;

fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// A backend with the operations below; the defaults are burn's.
pub trait Kernels: Backend {
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

    /// 3×3 average pool, stride 1, padding 1, the padding not counted.
    fn box3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false)
    }

    /// 3×3 max pool with the given stride and padding.
    fn max3(x: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::max_pool2d(x, [3, 3], [stride; 2], [padding; 2], [1, 1], false)
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
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    let y = wrap::<B, 4>(B::deconv(unwrap(x), unwrap(weight), options));
    let o = bias.dims()[0];
    let ones = Tensor::ones([1, o], &bias.device());
    channel_affine(y, ones, bias.reshape([1, o]))
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

/// `x·a + b` per channel: x `[n, c, h, w]`, a and b `[1, c]` (shared) or `[n, c]`.
pub fn channel_affine<B: Kernels>(
    x: Tensor<B, 4>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Tensor<B, 4> {
    wrap(B::affine(unwrap(x), unwrap(a), unwrap(b)))
}

/// The geometry of a convolution the CPU kernels handle (dilation 1, one group).
fn geometry(x: &[usize], w: &[usize], options: &ConvOptions<2>) -> Option<Geometry> {
    (options.dilation == [1, 1] && options.groups == 1).then_some(Geometry {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        o: w[0],
        kh: w[2],
        kw: w[3],
        stride: options.stride,
        padding: options.padding,
    })
}

/// The tensor, contiguous from offset 0 (a copy only when it is not already).
fn contiguous(t: FloatTensor<Flex>) -> burn_flex::FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

fn flex<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> FloatTensor<Flex> {
    burn_flex::FlexTensor::from_data(TensorData::new(data, shape))
}

/// Our convolution (dilation 1, one group, f32), with the ReLU applied as the output is
/// written when `relu`; burn-flex's otherwise.
fn flex_conv(
    x: FloatTensor<Flex>,
    w: FloatTensor<Flex>,
    bias: Option<FloatTensor<Flex>>,
    options: ConvOptions<2>,
    relu: bool,
) -> FloatTensor<Flex> {
    let xs = x.shape().dims::<4>();
    let ws = w.shape().dims::<4>();
    let f32s = all_f32(&[&x, &w]) && bias.as_ref().is_none_or(|b| all_f32(&[b]));
    match geometry(&xs, &ws, &options) {
        Some(g) if f32s => {
            let (x, w) = (contiguous(x), contiguous(w));
            let bias = bias.map(contiguous);
            let then = conv::Epilogue {
                bias: bias.as_ref().map(|b| b.storage::<f32>()),
                relu,
            };
            let y = conv::forward(x.storage::<f32>(), w.storage::<f32>(), then, &g);
            flex(y, [g.n, g.o, g.out_h(), g.out_w()])
        }
        _ => {
            let y = Flex::conv2d(x, w, bias, options);
            if relu {
                <Flex as ActivationOps<Flex>>::relu(y)
            } else {
                y
            }
        }
    }
}

fn all_f32(tensors: &[&FloatTensor<Flex>]) -> bool {
    tensors
        .iter()
        .all(|t| t.dtype() == burn::tensor::DType::F32)
}

/// Our convolution (forward and gradients), pools and affine map on f32 tensors; burn's
/// operations for anything else.
impl Kernels for Flex {
    fn conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        flex_conv(x, w, bias, options, false)
    }

    fn conv_relu(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        flex_conv(x, w, Some(bias), options, true)
    }

    fn box3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !all_f32(&[&x]) {
            return Self::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false);
        }
        let shape = x.shape().dims::<4>();
        let x = contiguous(x);
        flex(pool::box3(x.storage(), shape[2], shape[3]), shape)
    }

    fn max3(x: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        if !all_f32(&[&x]) || h + 2 * padding < 3 || w + 2 * padding < 3 || padding > 1 {
            return Self::max_pool2d(x, [3, 3], [stride; 2], [padding; 2], [1, 1], false);
        }
        let x = contiguous(x);
        let y = pool::max3(x.storage(), h, w, stride, padding);
        let out = |len| pool::max3_len(len, stride, padding);
        flex(y, [n, c, out(h), out(w)])
    }

    fn conv_grad_bias(dy: FloatTensor<Self>) -> FloatTensor<Self> {
        let [_, c, h, w] = dy.shape().dims::<4>();
        let dy = contiguous(dy);
        flex(affine::channel_sums(dy.storage(), c, h * w), [c])
    }

    fn deconv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let [n, cin, h, wd] = x.shape().dims::<4>();
        let [_, cout, kh, kw] = w.shape().dims::<4>();
        let [sh, sw] = options.stride;
        let [ph, pw] = options.padding;
        // The convolution this is the adjoint of: its input has the output's shape.
        let out = [
            n,
            cout,
            (h - 1) * sh + kh - 2 * ph,
            (wd - 1) * sw + kw - 2 * pw,
        ];
        match geometry(&out, &[cin, cout, kh, kw], &options) {
            Some(g) if all_f32(&[&x, &w]) => {
                let (x, w) = (contiguous(x), contiguous(w));
                flex(
                    conv::grad_x(w.storage::<f32>(), x.storage::<f32>(), &g),
                    out,
                )
            }
            _ => {
                let transposed = ConvTransposeOptions::new(
                    options.stride,
                    options.padding,
                    [0, 0],
                    options.dilation,
                    options.groups,
                );
                Self::conv_transpose2d(x, w, None, transposed)
            }
        }
    }

    fn conv_grad_x(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let xs = x.shape().dims::<4>();
        let ws = w.shape().dims::<4>();
        match geometry(&xs, &ws, &options) {
            Some(g) if all_f32(&[&w, &dy]) => {
                let (w, dy) = (contiguous(w), contiguous(dy));
                flex(
                    conv::grad_x(w.storage::<f32>(), dy.storage::<f32>(), &g),
                    xs,
                )
            }
            _ => Self::conv2d_x_backward(x, w, dy, options),
        }
    }

    fn conv_grad_w(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let xs = x.shape().dims::<4>();
        let ws = w.shape().dims::<4>();
        match geometry(&xs, &ws, &options) {
            Some(g) if all_f32(&[&x, &dy]) => {
                let (x, dy) = (contiguous(x), contiguous(dy));
                flex(
                    conv::grad_weight(x.storage::<f32>(), dy.storage::<f32>(), &g),
                    ws,
                )
            }
            _ => Self::conv2d_weight_backward(x, w, dy, options),
        }
    }

    fn affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        let rows = a.shape().dims::<2>()[0];
        let (x, a, b) = (contiguous(x), contiguous(a), contiguous(b));
        let y = affine::forward(x.storage(), a.storage(), b.storage(), c, rows, h * w);
        flex(y, [n, c, h, w])
    }

    fn affine_grads(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [n, c, h, w] = x.shape().dims::<4>();
        let rows = a.shape().dims::<2>()[0];
        let (x, a, dy) = (contiguous(x), contiguous(a), contiguous(dy));
        let (dx, da, db) = affine::backward(x.storage(), a.storage(), dy.storage(), c, rows, h * w);
        (
            flex(dx, [n, c, h, w]),
            flex(da, [rows, c]),
            flex(db, [rows, c]),
        )
    }
}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}

/// The gradients of x and w, for both forms of the convolution below.
fn conv_grads<B: Kernels>(
    [id_x, id_w]: [Option<NodeId>; 2],
    (x, w, dy): (FloatTensor<B>, FloatTensor<B>, &FloatTensor<B>),
    options: ConvOptions<2>,
    grads: &mut Gradients,
) {
    if let Some(id) = id_x {
        let dx = B::conv_grad_x(x.clone(), w.clone(), dy.clone(), options.clone());
        grads.register::<B>(id, dx);
    }
    if let Some(id) = id_w {
        grads.register::<B>(id, B::conv_grad_w(x, w, dy.clone(), options));
    }
}

type ConvState = (NodeId, NodeId, ConvOptions<2>);

#[derive(Debug)]
struct Conv;

impl<B: Kernels> Backward<B, 2> for Conv {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        let ids = ops.parents.map(|p| p.map(|node| node.id));
        conv_grads::<B>(ids, (x, w, &dy), options, grads);
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl<B: Kernels> Backward<B, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::conv_grad_bias(dy.clone()));
        }
        let ids = [node_x, node_w].map(|p| p.map(|node| node.id));
        conv_grads::<B>(ids, (x, w, &dy), options, grads);
    }
}

/// y = Aᵀx for the convolution A with the same weight: ∂x = A(∂y), and ∂w is the
/// convolution's weight gradient with the roles of input and output swapped.
#[derive(Debug)]
struct Deconv;

impl<B: Kernels> Backward<B, 2> for Deconv {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                B::conv(dy.clone(), w.clone(), None, options.clone()),
            );
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::conv_grad_w(dy, w, x, options));
        }
    }
}

impl<B: Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let Some(bias) = bias else {
            let nodes = [x.node.clone(), w.node.clone()];
            return match Conv.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                    prep.finish(state, B::conv(x.primitive, w.primitive, None, options))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::conv(x.primitive, w.primitive, None, options))
                }
            };
        };
        let nodes = [x.node.clone(), w.node.clone(), bias.node.clone()];
        let y = |x: FloatTensor<B>, w, b, options| B::conv(x, w, Some(b), options);
        match ConvWithBias.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                prep.finish(state, y(x.primitive, w.primitive, bias.primitive, options))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(y(x.primitive, w.primitive, bias.primitive, options))
            }
        }
    }

    fn deconv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node.clone(), w.node.clone()];
        match Deconv.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                prep.finish(state, B::deconv(x.primitive, w.primitive, options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deconv(x.primitive, w.primitive, options)),
        }
    }

    fn affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Affine;

        impl<B: Kernels> Backward<B, 3> for Affine {
            type State = (burn_autodiff::NodeId, burn_autodiff::NodeId);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_a, node_b] = ops.parents;
                let dy = grads.consume::<B>(&ops.node);
                let (x_state, a_state) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let a = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(a_state);
                let (dx, da, db) = B::affine_grads(x, a, dy);
                for (node, grad) in [(node_x, dx), (node_a, da), (node_b, db)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        match Affine
            .prepare::<C>([x.node.clone(), a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let a_state = prep.checkpoint(&a);
                let y = B::affine(x.primitive, a.primitive, b.primitive);
                prep.finish((x_state, a_state), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::affine(x.primitive, a.primitive, b.primitive))
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

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
}
