//! StyleGAN2's mapping network against the authors' `MappingNetwork`, through every
//! case of `fixtures/mapping/` (made by `tools/fixtures/mapping.py` in float64): the
//! authors' state loaded name for name, the truncated ws, the tracked average after
//! the pass, and the gradient of sum(ws · w) for every parameter.

mod common;

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::layers::{Mode, Scope};
use gan::stylegan2::mapping::{Layers, Mapping, Truncation, forward};
use gan::tensors::Tensors;
use kernels::TestBackend as Inner;

use common::{cases, check, gradients, state, tensor, values};

type Ad = Autodiff<Inner>;

#[test]
fn the_mapping_network_matches_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("mapping") {
        let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{case}: no `{k}`")) as usize;
        let m = Mapping {
            layers: Layers {
                c_dim: num("c_dim"),
                w_dim: num("w_dim"),
                num_layers: num("num_layers"),
                lr_multiplier: c["lr_multiplier"].as_f64().unwrap(),
            },
            num_ws: num("num_ws"),
            w_avg_beta: c["w_avg_beta"].as_f64().unwrap(),
        };
        let truncation = Truncation {
            psi: c["truncation_psi"].as_f64().unwrap(),
            cutoff: c["truncation_cutoff"].as_u64().map(|v| v as usize),
        };
        let device = Default::default();
        let state = state(&arrays, &["w_avg"]);
        let mut tensors = Tensors::<Ad>::from_inner(state, true);
        let z = tensor::<Ad, 2>(&arrays["z"]);
        let classes = (m.layers.c_dim > 0).then(|| {
            let labels: Vec<i64> = arrays["labels"].data.iter().map(|&v| v as i64).collect();
            let n = labels.len();
            let labels = Tensor::<Ad, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
            labels.one_hot(m.layers.c_dim).float()
        });
        let update = c["update_emas"].as_bool().unwrap();
        let ws = {
            let mut s = Scope::new(&mut tensors, Mode::TRAIN);
            forward(&mut s, &m, z, classes, truncation, update)
        };
        let loss = (ws.clone() * tensor::<Ad, 3>(&arrays["w"])).sum();
        let grads = tensors.gradients(&loss.backward());
        let w_avg = tensors
            .get("w_avg")
            .expect("the tracked average")
            .value
            .clone();
        let mut results = vec![
            ("ws".to_string(), values(ws.inner()), &arrays["ws"]),
            ("w_avg".to_string(), values(w_avg.inner()), &arrays["w_avg"]),
        ];
        results.extend(gradients(&arrays, "grad__", &grads));
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
