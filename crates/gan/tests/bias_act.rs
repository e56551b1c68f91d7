//! StyleGAN2's bias and activation against the authors' reference path, through every
//! case of `fixtures/bias_act/` (made by `tools/fixtures/bias_act.py` in float64): the
//! output, and the gradients of sum(y · w) with respect to the inputs and the bias.

mod common;

use burn::backend::Autodiff;
use gan::bias_act::{Activation, BiasAct, bias_act};
use kernels::TestBackend as Inner;
use metrics::npy;

use common::{cases, check, tensor, values};

type Ad = Autodiff<Inner>;

/// The case's output and gradients, for inputs of rank `D`.
fn run<const D: usize>(
    c: &serde_json::Value,
    arrays: &std::collections::BTreeMap<String, npy::Array>,
) -> [Vec<f64>; 3] {
    let act = c["act"].as_str().unwrap();
    let spec = BiasAct {
        act: Activation::from_reference_name(act)
            .unwrap_or_else(|| panic!("unknown activation `{act}`")),
        alpha: c["alpha"].as_f64(),
        gain: c["gain"].as_f64(),
        clamp: c["clamp"].as_f64(),
    };
    let x = tensor::<Ad, D>(&arrays["x"]).require_grad();
    let b = tensor::<Ad, 1>(&arrays["b"]).require_grad();
    let dim = c["dim"].as_u64().unwrap() as usize;
    let y = bias_act(x.clone(), Some(b.clone()), dim, &spec);
    let grads = (y.clone() * tensor::<Ad, D>(&arrays["w"])).sum().backward();
    [
        values(y.inner()),
        values(x.grad(&grads).expect("x takes part")),
        values(b.grad(&grads).expect("b takes part")),
    ]
}

#[test]
fn bias_and_activation_match_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("bias_act") {
        let [y, grad_x, grad_b] = match arrays["x"].shape.len() {
            2 => run::<2>(&c, &arrays),
            3 => run::<3>(&c, &arrays),
            4 => run::<4>(&c, &arrays),
            rank => panic!("{case}: inputs of rank {rank}"),
        };
        let results = [
            ("y".into(), y, &arrays["y"]),
            ("grad_x".into(), grad_x, &arrays["grad_x"]),
            ("grad_b".into(), grad_b, &arrays["grad_b"]),
        ];
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
