//! StyleGAN2's EMA of G against the authors' `EmaStylegan2`, through every case of
//! `fixtures/stylegan2_ema/` (made by `tools/fixtures/stylegan2_ema.py`): from the copy
//! it starts as, each update's decay from the half-life and its ramp-up, parameters
//! averaged and buffers copied, step after step.

mod common;

use gan::config::Stylegan2Training;
use gan::tensors::Tensors;
use gan::train::ema;
use kernels::TestBackend;

use common::{cases, check, state, values};

/// The state `<prefix>__<name>` of a case, as network state.
fn named(
    arrays: &std::collections::BTreeMap<String, metrics::npy::Array>,
    prefix: &str,
    buffers: &[&str],
) -> Tensors<TestBackend> {
    let picked = arrays
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(prefix)?.strip_prefix("__")?;
            Some((format!("state__{name}"), v.clone()))
        })
        .collect();
    state(&picked, buffers)
}

#[test]
fn the_stylegan2_ema_matches_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("stylegan2_ema") {
        let training = Stylegan2Training {
            g_reg_interval: 4,
            d_reg_interval: 16,
            g_ema_kimg: c["g_ema_kimg"].as_f64(),
            g_ema_rampup: c["g_ema_rampup"].as_f64(),
            pl_weight: None,
        };
        let batch = c["batch"].as_u64().unwrap() as usize;
        let buffers: Vec<&str> = c["buffers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        let mut target = named(&arrays, "initial", &buffers);
        for t in 0..c["steps"].as_u64().unwrap() {
            let source = named(&arrays, &format!("source_{t}"), &buffers);
            let beta = training.ema_beta(t, batch).expect("an EMA");
            ema::update(&mut target, &source, beta, true);
            let expected = named(&arrays, &format!("target_{t}"), &buffers);
            let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
            let results: Vec<(String, Vec<f64>, &metrics::npy::Array)> = names
                .iter()
                .map(|name| {
                    let got = values(target.get(name).expect("the EMA's tensor").value.clone());
                    let key = format!("target_{t}__{name}");
                    (key.clone(), got, &arrays[&key])
                })
                .collect();
            check(&case, &results, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
