//! `cargo bench -p metrics --bench backbones [-- NAME…]`: features per second of the
//! full-size SwAV ResNet-50, DINO ViT-S/8 and DINOv2 ViT-L/14 on the CPU (on CUDA device
//! 0 with `--features cuda`, as the parity tests), 32×32 images
//! (resized to 224×224 as the metrics do), batch 8, the networks built from the
//! releases' names and shapes (`fixtures/backbones/names/`) with random values: speed
//! does not depend on them.
//!
//! `backbones_speed.py` beside this file times the reference models the same way.

use std::collections::BTreeMap;
use std::time::Instant;

use kernels::TestBackend as Backend;
use metrics::backbone::{Backbone, ImageNetNetwork};
use metrics::inception::images_tensor;
use metrics::resize::Resizer;
use metrics::tensors::Listing;
use rng::Rng;

const BATCH: usize = 8;

fn main() {
    kernels::memory::keep_freed_memory();
    let full = std::env::args().any(|a| a == "--bench");
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let dir = fixtures::ours("backbones").join("names");
    let device = Default::default();
    let mut rng = Rng::new(0);
    let pixels: Vec<u8> = (0..BATCH * 32 * 32 * 3)
        .map(|_| rng.next_u64() as u8)
        .collect();
    for backbone in [Backbone::Swav, Backbone::Dino, Backbone::Dinov2] {
        let name = backbone.to_string().to_lowercase();
        if !chosen.is_empty() && !chosen.contains(&name) {
            continue;
        }
        #[derive(serde::Deserialize)]
        struct Names {
            tensors: BTreeMap<String, Vec<usize>>,
        }
        let file = dir.join(format!("{name}.json"));
        let names: Names =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("listing")).expect("json");
        let weights = Listing::random(names.tensors, backbone.prefix(), 1);
        let net = ImageNetNetwork::<Backend>::load(
            &weights,
            backbone,
            backbone.architecture(),
            Resizer::Legacy,
            &device,
        )
        .expect("the release's layout");
        let run = |n: usize| {
            let images = images_tensor::<Backend>(&pixels[..n * 32 * 32 * 3], n, 32, 32, &device);
            std::hint::black_box(net.features(images).expect("features").into_data());
        };
        run(1);
        let rounds = if full { 3 } else { 1 };
        let mut best = f64::INFINITY;
        for _ in 0..rounds {
            let clock = Instant::now();
            run(BATCH);
            best = best.min(clock.elapsed().as_secs_f64());
        }
        println!(
            "{backbone} features, {}, 32×32 input, batch {BATCH}: {:.2} images/s",
            <Backend as burn::prelude::Backend>::name(&device),
            BATCH as f64 / best
        );
    }
}
