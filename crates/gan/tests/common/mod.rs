//! What the parity tests of StyleGAN2's operations share: the cases of a fixture folder
//! and how a result is compared with the reference's.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::prelude::*;
use gan::tensors::{Entry, Role, Tensors};
use kernels::TestBackend;
use metrics::npy;

/// Every case of `fixtures/<folder>/`: its name, its entry in `cases.json` and its
/// arrays (`<name>.npz`).
pub fn cases(folder: &str) -> Vec<(String, serde_json::Value, BTreeMap<String, npy::Array>)> {
    let dir = fixtures::ours(folder);
    let path = dir.join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    cases
        .into_iter()
        .map(|(case, c)| {
            let arrays = npy::read_npz(&dir.join(format!("{case}.npz")))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            (case, c, arrays)
        })
        .collect()
}

/// An array as a float tensor of rank `D`.
pub fn tensor<B: Backend, const D: usize>(a: &npy::Array) -> Tensor<B, D> {
    let v: Vec<f32> = a.data.iter().map(|&v| v as f32).collect();
    let shape: [usize; D] = a.shape.clone().try_into().expect("the rank asked for");
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

/// The largest difference from `expected`, as a share of a tolerance of
/// 1e-5 × max|expected| + 1e-6 (float32 against the reference's float64).
pub fn worst_share(got: &[f64], expected: &npy::Array) -> f64 {
    assert_eq!(got.len(), expected.data.len(), "size");
    let scale = expected.data.iter().fold(0f64, |m, v| m.max(v.abs()));
    let tolerance = 1e-5 * scale + 1e-6;
    got.iter()
        .zip(&expected.data)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() / tolerance))
}

/// One compared quantity: its name, our values and the reference's array.
pub type Result<'a> = (String, Vec<f64>, &'a npy::Array);

/// Checks each `(what, got, expected)` of `case`, printing its worst share of the
/// tolerance; failures are added to `failures`.
pub fn check(case: &str, results: &[Result], failures: &mut Vec<String>) {
    for (what, got, expected) in results {
        let share = worst_share(got, expected);
        println!("{case} {what}: worst error {share:.3} of its tolerance");
        if share > 1.0 {
            failures.push(format!("{case} {what}: {share:.2} tolerances off"));
        }
    }
}

/// The network state a case holds (`state__<name>` arrays), name for name; a tensor
/// whose last name segment is one of `buffers` is a buffer, the others parameters.
pub fn state(arrays: &BTreeMap<String, npy::Array>, buffers: &[&str]) -> Tensors<TestBackend> {
    let mut state = Tensors::new(&Default::default());
    for (key, array) in arrays {
        let Some(name) = key.strip_prefix("state__") else {
            continue;
        };
        let last = name.rsplit('.').next().unwrap_or(name);
        let role = match buffers.contains(&last) {
            true => Role::Buffer,
            false => Role::Param,
        };
        let flat = npy::Array {
            shape: vec![array.data.len()],
            data: array.data.clone(),
        };
        let entry = Entry {
            shape: array.shape.clone(),
            role,
            value: tensor::<TestBackend, 1>(&flat),
        };
        state.insert(name.to_string(), entry);
    }
    state
}

/// The `<prefix><name>` arrays of a case (`grad__<name>` usually), each with the
/// gradient `grads` holds for it (zeros where it holds none: a parameter that took no
/// part).
pub fn gradients<'a>(
    arrays: &'a BTreeMap<String, npy::Array>,
    prefix: &str,
    grads: &BTreeMap<String, Tensor<TestBackend, 1>>,
) -> Vec<Result<'a>> {
    arrays
        .iter()
        .filter_map(|(key, expected)| {
            let name = key.strip_prefix(prefix)?;
            let got = grads
                .get(name)
                .map(|g| values(g.clone()))
                .unwrap_or_else(|| vec![0.0; expected.data.len()]);
            Some((key.clone(), got, expected))
        })
        .collect()
}

/// ADA's draws and p a case handed to the authors' code: `<prefix><transform>` values
/// and `<prefix><transform>_gate` uniforms for each transform the case has, and
/// `<prefix>p`.
pub fn ada_draws(arrays: &BTreeMap<String, npy::Array>, prefix: &str) -> gan::train::ada::Draws {
    use gan::train::ada::{Drawn, Draws, Transform};
    let transforms = Transform::ALL
        .into_iter()
        .filter(|t| arrays.contains_key(&format!("{prefix}{}", t.name())))
        .map(|transform| Drawn {
            transform,
            values: arrays[&format!("{prefix}{}", transform.name())]
                .data
                .clone(),
            gates: arrays[&format!("{prefix}{}_gate", transform.name())]
                .data
                .clone(),
        })
        .collect();
    Draws {
        p: arrays[&format!("{prefix}p")].data[0],
        transforms,
    }
}
