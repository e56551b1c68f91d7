//! StyleGAN2's FIR resampling against the authors' reference path, through every case
//! of `fixtures/upfirdn2d/` (made by `tools/fixtures/upfirdn2d.py` in float64): the
//! output, and the gradient of sum(y · w) with respect to the images.

use std::collections::BTreeMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::upfirdn2d::{Filter, Resampling, upfirdn2d};
use kernels::TestBackend as Inner;
use metrics::npy;

type Ad = Autodiff<Inner>;

fn tensor<B: Backend>(a: &npy::Array) -> Tensor<B, 4> {
    let v: Vec<f32> = a.data.iter().map(|&v| v as f32).collect();
    let s = &a.shape;
    Tensor::from_data(
        TensorData::new(v, [s[0], s[1], s[2], s[3]]),
        &Default::default(),
    )
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

fn pair(v: &serde_json::Value, i: usize) -> usize {
    v[i].as_u64().unwrap() as usize
}

/// The case's resampling as `cases.json` writes it.
fn resampling(c: &serde_json::Value) -> Resampling {
    let pad = |i: usize| c["padding"][i].as_i64().unwrap() as isize;
    Resampling {
        up: (pair(&c["up"], 0), pair(&c["up"], 1)),
        down: (pair(&c["down"], 0), pair(&c["down"], 1)),
        padding: (pad(0), pad(1), pad(2), pad(3)),
        flip_filter: c["flip_filter"].as_bool().unwrap(),
        gain: c["gain"].as_f64().unwrap(),
    }
}

fn filter(a: &npy::Array) -> Filter {
    match a.shape.as_slice() {
        [_] => Filter::Separable(a.data.clone()),
        [_, cols] => Filter::Full(a.data.chunks(*cols).map(<[f64]>::to_vec).collect()),
        other => panic!("a filter of shape {other:?}"),
    }
}

/// The largest difference as a share of a tolerance of 1e-5 × max|expected| + 1e-6.
fn worst_share(got: &[f64], expected: &npy::Array) -> f64 {
    assert_eq!(got.len(), expected.data.len(), "size");
    let scale = expected.data.iter().fold(0f64, |m, v| m.max(v.abs()));
    let tolerance = 1e-5 * scale + 1e-6;
    got.iter()
        .zip(&expected.data)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() / tolerance))
}

#[test]
fn resampling_matches_the_reference_for_every_case() {
    let dir = fixtures::ours("upfirdn2d");
    let cases_path = dir.join("cases.json");
    let text = std::fs::read_to_string(&cases_path)
        .unwrap_or_else(|e| panic!("{}: {e}", cases_path.display()));
    let cases: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "no cases in {}", cases_path.display());
    let mut failures = Vec::new();
    for (case, c) in &cases {
        let arrays = npy::read_npz(&dir.join(format!("{case}.npz")))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let r = resampling(c);
        let f = filter(&arrays["f"]);
        let x = tensor::<Ad>(&arrays["x"]).require_grad();
        let y = upfirdn2d(x.clone(), &f, &r);
        assert_eq!(y.dims().to_vec(), arrays["y"].shape, "{case}: output shape");
        let loss = (y.clone() * tensor::<Ad>(&arrays["w"])).sum();
        let grad = x.grad(&loss.backward()).expect("x takes part");
        for (what, got, expected) in [
            ("y", values(y.inner()), &arrays["y"]),
            ("grad_x", values(grad), &arrays["grad_x"]),
        ] {
            let share = worst_share(&got, expected);
            println!("{case} {what}: worst error {share:.3} of its tolerance");
            if share > 1.0 {
                failures.push(format!("{case} {what}: {share:.2} tolerances off"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
