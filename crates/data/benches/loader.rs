//! Loader throughput on CIFAR-sized data (50,000 images of 32×32×3), batches of 64 with
//! flips: `cargo bench -p data --bench loader`. Target: above 2,000 batches per second
//! on one core.

use std::sync::Arc;
use std::time::Instant;

use data::loader::{LoaderConfig, Producer};
use data::{Loader, PackWriter, Packed};
use rng::Rng;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let images = if full { 50_000 } else { 2_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cifar-sized.pack");
    let classes: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
    let mut writer = PackWriter::create(&path, 32, 32, classes, "bench").expect("create");
    let mut rng = Rng::new(1);
    let mut pixels = vec![0u8; 32 * 32 * 3];
    for i in 0..images {
        pixels.iter_mut().for_each(|p| *p = rng.next_u64() as u8);
        writer.push(&pixels, i % 10).expect("push");
    }
    writer.finish().expect("finish");
    let data = Arc::new(Packed::open(&path).expect("open"));
    let config = LoaderConfig {
        batch_size: 64,
        seed: 0,
        flip: true,
        drop_last: true,
        prefetch: 4,
        views: false,
    };
    let batches = if full { 20_000 } else { 500 };

    let mut producer = Producer::new(data.clone(), config.clone(), 0);
    let clock = Instant::now();
    let mut checksum = 0f32;
    for _ in 0..batches {
        checksum += producer.next_batch().images[0];
    }
    let one_core = batches as f64 / clock.elapsed().as_secs_f64();
    println!(
        "loader, one core: {one_core:.0} batches of 64 per second ({:.0} images/s)",
        one_core * 64.0
    );

    let clock = Instant::now();
    for batch in Loader::new(data, config, 0).take(batches) {
        checksum += batch.images[0];
    }
    let threaded = batches as f64 / clock.elapsed().as_secs_f64();
    println!(
        "loader with its prefetch thread, as training sees it: {threaded:.0} batches per second"
    );
    std::hint::black_box(checksum);
}
