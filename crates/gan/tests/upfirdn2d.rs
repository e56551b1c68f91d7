//! StyleGAN2's FIR resampling against the authors' reference path, through every case
//! of `fixtures/upfirdn2d/` (made by `tools/fixtures/upfirdn2d.py` in float64): the
//! output, and the gradient of sum(y · w) with respect to the images.

mod common;

use burn::backend::Autodiff;
use gan::upfirdn2d::{Filter, Resampling, upfirdn2d};
use kernels::TestBackend as Inner;
use metrics::npy;

use common::{cases, check, tensor, values};

type Ad = Autodiff<Inner>;

/// The case's resampling as `cases.json` writes it.
fn resampling(c: &serde_json::Value) -> Resampling {
    let pair = |k: &str| {
        let at = |i: usize| c[k][i].as_u64().unwrap() as usize;
        (at(0), at(1))
    };
    let pad = |i: usize| c["padding"][i].as_i64().unwrap() as isize;
    Resampling {
        up: pair("up"),
        down: pair("down"),
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

#[test]
fn resampling_matches_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("upfirdn2d") {
        let x = tensor::<Ad, 4>(&arrays["x"]).require_grad();
        let y = upfirdn2d(x.clone(), &filter(&arrays["f"]), &resampling(&c));
        assert_eq!(y.dims().to_vec(), arrays["y"].shape, "{case}: output shape");
        let loss = (y.clone() * tensor::<Ad, 4>(&arrays["w"])).sum();
        let grad = x.grad(&loss.backward()).expect("x takes part");
        let results = [
            ("y".into(), values(y.inner()), &arrays["y"]),
            ("grad_x".into(), values(grad), &arrays["grad_x"]),
        ];
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
