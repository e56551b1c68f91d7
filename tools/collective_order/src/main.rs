//! Does burn-collective 0.21's local all-reduce sum the same way every time?
//!
//! `devices: N` promises that a run resumes bit for bit and that its result does not
//! depend on scheduling. An all-reduce can serve it only if the sum's order is fixed.
//! This runs each of burn-collective's local strategies 20 times, for 2, 3 and 4 peers
//! (one thread each, as the API requires), on gradients of mixed magnitudes, and counts
//! the distinct results and whether any equals the sum in peer order.
//!
//!     cargo run --release --manifest-path tools/collective_order/Cargo.toml

use std::collections::BTreeSet;

use burn_collective::{
    AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective,
    register, reset_collective,
};
use burn_flex::Flex;
use burn_tensor::{Tensor, TensorData, TensorPrimitive};

const LEN: usize = 4096;
const RUNS: usize = 20;

fn peer(id: usize, peers: usize, strategy: AllReduceStrategy, input: Vec<f32>) -> Vec<u32> {
    let device = Default::default();
    let config = CollectiveConfig::default()
        .with_num_devices(peers)
        .with_local_all_reduce_strategy(strategy);
    let id = PeerId::from(id);
    register::<Flex>(id, device, config).expect("register");
    let tensor = Tensor::<Flex, 1>::from_data(TensorData::from(input.as_slice()), &device);
    let sum = all_reduce::<Flex>(id, tensor.into_primitive().tensor(), ReduceOperation::Sum)
        .expect("all_reduce");
    finish_collective::<Flex>(id).expect("finish_collective");
    let sum = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(sum));
    let values: Vec<f32> = sum.into_data().to_vec().expect("f32 data");
    values.iter().map(|v| v.to_bits()).collect()
}

/// Peer `p`'s gradient: values spread over nine orders of magnitude, so that
/// (a + b) + c and (a + c) + b round differently.
fn gradient(p: usize) -> Vec<f32> {
    (0..LEN)
        .map(|i| {
            let mantissa = ((i * 7919 + p * 104_729) % 1000) as f32;
            mantissa * 10f32.powi(((p * 3 + i) % 9) as i32 - 4)
        })
        .collect()
}

fn main() {
    for peers in [2, 3, 4] {
        let inputs: Vec<Vec<f32>> = (0..peers).map(gradient).collect();
        let in_order: Vec<u32> = (0..LEN)
            .map(|i| inputs.iter().fold(0f32, |sum, x| sum + x[i]).to_bits())
            .collect();
        for strategy in [
            AllReduceStrategy::Centralized,
            AllReduceStrategy::Tree(2),
            AllReduceStrategy::Ring,
        ] {
            let mut results = BTreeSet::new();
            let mut peers_disagreed = 0;
            for _ in 0..RUNS {
                reset_collective::<Flex>();
                let threads: Vec<_> = inputs
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(id, x)| std::thread::spawn(move || peer(id, peers, strategy, x)))
                    .collect();
                let sums: Vec<Vec<u32>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
                peers_disagreed += usize::from(sums.iter().any(|s| *s != sums[0]));
                results.insert(sums[0].clone());
            }
            println!(
                "{peers} peers, {strategy:?}: {} distinct sums in {RUNS} runs, {} equal to the \
                 sum in peer order; peers disagreed in {peers_disagreed} runs",
                results.len(),
                usize::from(results.contains(&in_order)),
            );
        }
    }
}
