//! `cargo bench -p kernels --bench conv`: one 3×3 convolution of BigGAN32's
//! discriminator at the paper's width (64 × 192 × 16 × 16, 192 filters), forward and
//! both gradients, ours (im2col + GEMM) against burn-flex's, in GFLOP/s on the CPU.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use rng::Rng;

type Ad = Autodiff<Flex>;

fn random(rng: &mut Rng, shape: [usize; 4]) -> Tensor<Ad, 4> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.f32() - 0.5).collect();
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

fn main() {
    let mut rng = Rng::new(1);
    let (n, c, hw, o) = (64, 192, 16, 192);
    let flops = 2.0 * (n * hw * hw * o * c * 9) as f64;
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let x0 = random(&mut rng, [n, c, hw, hw]);
    let w0 = random(&mut rng, [o, c, 3, 3]);
    let r = random(&mut rng, [n, o, hw, hw]);
    for (name, ours) in [("ours", true), ("burn-flex", false)] {
        for round in 0..2 {
            let x = Tensor::<Ad, 4>::from_data(x0.to_data(), &Default::default()).require_grad();
            let w = Tensor::<Ad, 4>::from_data(w0.to_data(), &Default::default()).require_grad();
            let t0 = Instant::now();
            let y = if ours {
                kernels::conv2d(x.clone(), w.clone(), None, options.clone())
            } else {
                burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone())
            };
            let loss = (y * r.clone()).sum();
            let _: f32 = loss.clone().into_scalar();
            let forward = t0.elapsed().as_secs_f64();
            let grads = loss.backward();
            let _ = x.grad(&grads).unwrap().into_data();
            let _ = w.grad(&grads).unwrap().into_data();
            let total = t0.elapsed().as_secs_f64();
            if round == 1 {
                println!(
                    "{name}: forward {:.0} ms ({:.0} GFLOP/s), forward + backward {:.0} ms ({:.0} GFLOP/s)",
                    1e3 * forward,
                    flops / forward / 1e9,
                    1e3 * total,
                    3.0 * flops / total / 1e9
                );
            }
        }
    }
}
