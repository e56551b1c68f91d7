//! StyleGAN2's synthesis network against the authors' `SynthesisNetwork`, through every
//! case of `fixtures/synthesis/` (made by `tools/fixtures/synthesis.py` in float64): the
//! authors' state loaded name for name, the images for given ws, and the gradients of
//! sum(img · w) for every parameter and for the ws.

mod common;

use burn::backend::Autodiff;
use gan::layers::{Mode, Scope};
use gan::stylegan2::synthesis::{Noise, Synthesis, forward};
use gan::tensors::Tensors;
use kernels::TestBackend as Inner;

use common::{cases, check, gradients, state, tensor, values};

type Ad = Autodiff<Inner>;

#[test]
fn the_synthesis_network_matches_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("synthesis") {
        let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{case}: no `{k}`")) as usize;
        let net = Synthesis {
            w_dim: num("w_dim"),
            resolution: num("resolution"),
            img_channels: num("img_channels"),
            channel_base: num("channel_base"),
            channel_max: num("channel_max"),
        };
        assert_eq!(net.num_ws(), num("num_ws"), "{case}: how many ws");
        let mut noise = match c["noise_mode"].as_str() {
            Some("const") => Noise::Const,
            Some("none") => Noise::Off,
            other => panic!("{case}: noise mode {other:?}"),
        };
        let mut tensors = Tensors::<Ad>::from_inner(state(&arrays, &["noise_const"]), true);
        let ws = tensor::<Ad, 3>(&arrays["ws"]).require_grad();
        let img = {
            let mut s = Scope::new(&mut tensors, Mode::TRAIN);
            forward(&mut s, &net, ws.clone(), &mut noise)
        };
        let loss = (img.clone() * tensor::<Ad, 4>(&arrays["w"])).sum();
        let backward = loss.backward();
        let grad_ws = ws.grad(&backward).expect("the images depend on the ws");
        let mut results = vec![
            ("img".to_string(), values(img.inner()), &arrays["img"]),
            ("grad_ws".to_string(), values(grad_ws), &arrays["grad_ws"]),
        ];
        results.extend(gradients(&arrays, "grad__", &tensors.gradients(&backward)));
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
