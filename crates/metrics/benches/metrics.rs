//! `cargo bench -p metrics --bench metrics`:
//! 1. FID Inception feature extraction, images/s at 32×32 input, batch 50, on the CPU
//!    (weights: the fixture's pytorch-fid-layout file; speed does not depend on values).
//! 2. FID between two 2048-d statistics (target: under 2 s on one core).
//!
//! `pytorch_fid_speed.py` beside this file measures the reference the same way.

use std::time::Instant;

use burn::backend::Flex;
use faer::{Accum, Mat, Par};
use metrics::Stats;
use metrics::fid::fid;
use metrics::inception::{FidInception, images_tensor};
use rng::Rng;

fn random_stats(rng: &mut Rng, d: usize, n: usize) -> Stats {
    let x = Mat::from_fn(n, d, |_, _| rng.f32() as f64 - 0.5);
    let mut sigma = Mat::zeros(d, d);
    faer::linalg::matmul::matmul(
        sigma.as_mut(),
        Accum::Replace,
        x.transpose(),
        x.as_ref(),
        1.0 / n as f64,
        Par::Seq,
    );
    Stats {
        mu: (0..d).map(|_| rng.f32() as f64).collect(),
        sigma: (0..d * d).map(|k| sigma[(k / d, k % d)]).collect(),
    }
}

fn main() {
    // As `pipe` runs: freed buffers kept for the next batch.
    kernels::memory::keep_freed_memory();
    let full = std::env::args().any(|a| a == "--bench");
    // Any FID Inception weight file of the fixtures: speed does not depend on the values.
    let weights = fixtures::file_with_extension("fid-inception", "pth");
    assert!(
        weights.exists(),
        "benchmark weights missing: {}",
        weights.display()
    );
    let device = Default::default();
    let net = FidInception::<Flex>::load(&weights, &device).expect("weights");
    let batch = 50;
    let mut rng = Rng::new(0);
    let pixels: Vec<u8> = (0..batch * 32 * 32 * 3)
        .map(|_| rng.next_u64() as u8)
        .collect();
    net.forward(images_tensor(&pixels, 2, 32, 32, &device))
        .expect("warm-up");
    let rounds = if full { 3 } else { 1 };
    let clock = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(
            net.forward(images_tensor(&pixels, batch, 32, 32, &device))
                .expect("forward"),
        );
    }
    let rate = (rounds * batch) as f64 / clock.elapsed().as_secs_f64();
    println!(
        "FID Inception features, CPU (burn-flex), 32×32 input, batch {batch}: {rate:.1} images/s"
    );

    let d = if full { 2048 } else { 256 };
    let (a, b) = (
        random_stats(&mut rng, d, d + 100),
        random_stats(&mut rng, d, d + 100),
    );
    faer::set_global_parallelism(Par::Seq);
    let clock = Instant::now();
    let value = fid(&a, &b).expect("fid");
    println!(
        "FID of two {d}-d statistics, one core: {:.2} s (value {value:.3})",
        clock.elapsed().as_secs_f64()
    );
}
