//! The Flex (CPU) side of [`Kernels`]: our convolutions, pools and affine maps where
//! they apply, burn-flex's operations elsewhere.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorMetadata;
use burn::tensor::ops::{
    ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensor, FloatTensorOps, ModuleOps,
};

use crate::Kernels;
use crate::conv::{self, Geometry};
use crate::{affine, pool};

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

/// The tensor's values in a buffer of their own, row-major: the kernels read
/// `storage()` whole, and a view (a narrowed batch's first rows, say) is contiguous at
/// offset 0 with a larger buffer. burn-flex's `to_contiguous` copies only when needed.
fn contiguous(t: FloatTensor<Flex>) -> burn_flex::FlexTensor {
    t.to_contiguous()
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

    /// Through faer's matrix product, which picks AVX-512 kernels where the CPU has
    /// them (burn-flex's `gemm` stays on AVX2: see Cargo.toml), the bias written first.
    fn linear_rows(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [m, k] = x.shape().dims::<2>();
        let n = w.shape().dims::<2>()[1];
        if !all_f32(&[&x, &w, &bias]) {
            let y = Flex::float_matmul(x, w);
            let bias = Flex::float_reshape(bias, burn::tensor::Shape::new([1, n]));
            return Flex::float_add(y, bias);
        }
        let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
        let mut y = bias.storage::<f32>()[..n].repeat(m);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(&mut y, m, n),
            faer::Accum::Add,
            faer::MatRef::from_row_major_slice(&x.storage::<f32>()[..m * k], m, k),
            faer::MatRef::from_row_major_slice(&w.storage::<f32>()[..k * n], k, n),
            1.0,
            faer::Par::rayon(0),
        );
        flex(y, [m, n])
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

    fn upsample2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        if !all_f32(&[&x]) {
            return crate::upsample2_by_broadcast::<Self>(x);
        }
        let x = contiguous(x);
        flex(pool::upsample2(x.storage(), h, w), [n, c, 2 * h, 2 * w])
    }

    fn mean2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        if !all_f32(&[&x]) {
            return Self::avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false);
        }
        let x = contiguous(x);
        flex(pool::mean2(x.storage(), h, w), [n, c, h / 2, w / 2])
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
