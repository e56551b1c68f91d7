//! `cargo bench -p kernels --bench layers`: every convolution of SNDCGAN32 (the
//! paper's DCGAN, batch 64) forward and both gradients, and G's transposed
//! convolutions, through the `Kernels` operations the networks call, in ms and
//! GFLOP/s. A training iteration's time is mostly these; the table says which layer
//! and which pass to work on (compare `tools/bench/torch_profile.py`).

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use kernels::Kernels;
use rng::Rng;

const BATCH: usize = 64;

fn random(rng: &mut Rng, shape: [usize; 4]) -> FloatTensor<Flex> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.f32() - 0.5).collect();
    Tensor::<Flex, 4>::from_data(TensorData::new(v, shape), &Default::default())
        .into_primitive()
        .tensor()
}

/// Milliseconds per call, the mean of three after one warm-up.
fn ms(f: impl Fn() -> FloatTensor<Flex>) -> f64 {
    f();
    let t0 = Instant::now();
    for _ in 0..3 {
        f();
    }
    1e3 * t0.elapsed().as_secs_f64() / 3.0
}

fn main() {
    kernels::memory::keep_freed_memory();
    let mut rng = Rng::new(1);
    println!(
        "{:<28} {:>14} {:>14} {:>14}",
        "layer", "forward", "∂x", "∂w"
    );
    // D's convolutions and G's last: (in, size, out, kernel, stride, padding).
    let convs = [
        (3, 32, 64, 3, 1, 1),
        (64, 32, 64, 4, 2, 1),
        (64, 16, 128, 3, 1, 1),
        (128, 16, 128, 4, 2, 1),
        (128, 8, 256, 3, 1, 1),
        (256, 8, 256, 4, 2, 1),
        (256, 4, 512, 3, 1, 1),
        (64, 32, 3, 3, 1, 1),
    ];
    for (c, size, o, k, s, p) in convs {
        let x = random(&mut rng, [BATCH, c, size, size]);
        let w = random(&mut rng, [o, c, k, k]);
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let out = (size + 2 * p - k) / s + 1;
        let dy = random(&mut rng, [BATCH, o, out, out]);
        let gflop = 2.0 * (BATCH * o * out * out * c * k * k) as f64 / 1e9;
        let cell = |t: f64| format!("{t:6.1} ({:3.0} GF/s)", gflop / t * 1e3);
        let forward = ms(|| Flex::conv(x.clone(), w.clone(), None, options.clone()));
        let dx = ms(|| Flex::conv_grad_x(x.clone(), w.clone(), dy.clone(), options.clone()));
        let dw = ms(|| Flex::conv_grad_w(x.clone(), w.clone(), dy.clone(), options.clone()));
        println!(
            "{:<28} {} {} {}",
            format!("conv {c}→{o} {k}×{k}/{s} at {size}"),
            cell(forward),
            cell(dx),
            cell(dw)
        );
    }
    // G's transposed convolutions (4×4, stride 2): the forward pass; their gradients
    // are the convolution's forward and weight gradient, measured above in kind.
    for (c, size, o) in [(512, 4, 256), (256, 8, 128), (128, 16, 64)] {
        let x = random(&mut rng, [BATCH, c, size, size]);
        let w = random(&mut rng, [c, o, 4, 4]);
        let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let gflop = 2.0 * (BATCH * c * size * size * o * 16) as f64 / 1e9;
        let t = ms(|| Flex::deconv(x.clone(), w.clone(), options.clone()));
        println!(
            "{:<28} {t:6.1} ({:3.0} GF/s)",
            format!("deconv {c}→{o} 4×4/2 at {size}"),
            gflop / t * 1e3
        );
    }
}
