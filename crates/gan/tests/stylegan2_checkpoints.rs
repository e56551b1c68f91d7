//! The authors' StyleGAN2 checkpoints imported name for name and run through G and D
//! as training runs them, against the authors' code: every case of
//! `fixtures/stylegan2/` (made by `tools/fixtures/stylegan2.py`; G's noise strengths
//! zero there, so that its images are a function of z and the labels), G's images and
//! every parameter's gradient (but the noise strengths'), D's outputs and every
//! parameter's gradient.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::import::{Network, import};
use gan::layers::Mode;
use gan::tensors::Tensors;
use gan::train::augment::Draws;
use gan::{ModelConfig, discriminator, generator};
use kernels::TestBackend as Inner;
use metrics::npy;

use common::{check, gradients, tensor, values};

type Ad = Autodiff<Inner>;

/// The case's configuration as a pipeline writes it.
fn model(case: &str, c: &serde_json::Value) -> ModelConfig {
    let conditioning = match (c["g_cond_mtd"].as_str(), c["d_cond_mtd"].as_str()) {
        (Some("W/O"), Some("W/O")) => "None",
        (Some("cAdaIN"), Some("SPD")) => "Projection",
        (Some("cAdaIN"), Some("2C")) => "Contrastive",
        (Some("cAdaIN"), Some("D2DCE")) => "D2DCE",
        other => panic!("{case}: conditioning {other:?}"),
    };
    let architecture = match c["d_architecture"].as_str() {
        Some("orig") => "Orig",
        Some("resnet") => "Resnet",
        other => panic!("{case}: d_architecture {other:?}"),
    };
    let config = serde_json::json!({
        "architecture": "Stylegan2",
        "conditioning": conditioning,
        "num_classes": c["num_classes"],
        "z_dim": c["z_dim"],
        "hyper_dim": c["d_embed_dim"],
        "normalize_embed": c["normalize_d_embed"],
        "g_spectral_norm": false,
        "d_spectral_norm": false,
        "stylegan2": {
            "resolution": c["resolution"],
            "w_dim": c["w_dim"],
            "mapping_network": c["mapping_network"],
            "channel_base": c["channel_base"],
            "channel_max": c["channel_max"],
            "d_architecture": architecture,
            "d_epilogue_mbstd_group_size": c["d_epilogue_mbstd_group_size"],
        },
    });
    let config: ModelConfig = serde_json::from_value(config).unwrap();
    config.check().unwrap_or_else(|e| panic!("{case}: {e:?}"));
    config
}

fn labels(a: &npy::Array) -> Tensor<Ad, 1, Int> {
    let v: Vec<i64> = a.data.iter().map(|&v| v as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), &Default::default())
}

/// Every case of `fixtures/stylegan2/`: its name, configuration, folder and arrays.
fn stylegan2_cases() -> Vec<(String, ModelConfig, PathBuf, BTreeMap<String, npy::Array>)> {
    let root = fixtures::ours("stylegan2");
    let text = std::fs::read_to_string(root.join("cases.json")).unwrap();
    let cases: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    cases
        .into_iter()
        .map(|(case, c)| {
            let config = model(&case, &c);
            let dir = root.join(&case);
            let arrays = npy::read_npz(&dir.join("case.npz")).unwrap();
            (case, config, dir, arrays)
        })
        .collect()
}

#[test]
fn imported_stylegan2_checkpoints_match_the_reference() {
    let device = Default::default();
    let mut failures = Vec::new();
    for (case, config, dir, arrays) in stylegan2_cases() {
        let g = import::<Inner>(&dir.join("G.pth"), Network::Generator, &config, &device)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let d = import::<Inner>(&dir.join("D.pth"), Network::Discriminator, &config, &device)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(
            g.ignored.is_empty() && d.ignored.is_empty(),
            "{case}: nothing left out"
        );

        let mut g = Tensors::<Ad>::from_inner(g.tensors, true);
        let z = tensor::<Ad, 2>(&arrays["z"]);
        let y = labels(&arrays["labels"]);
        let img = generator::run(&mut g, Mode::EVAL, &config, z, y.clone());
        let loss = (img.clone() * tensor::<Ad, 4>(&arrays["w_img"])).sum();
        let g_grads = g.gradients(&loss.backward());
        let mut results = vec![(
            "img".to_string(),
            values(img.clone().inner()),
            &arrays["img"],
        )];
        results.extend(gradients(&arrays, "grad_g__", &g_grads));

        let mut d = Tensors::<Ad>::from_inner(d.tensors, true);
        let out = discriminator::run(&mut d, Mode::TRAIN, &config, img.detach(), y);
        let n = out.adv.dims()[0];
        let mut outputs = vec![("adv", out.adv.reshape([n, 1]))];
        if let Some((embed, proxy)) = out.contrastive {
            outputs.extend([("embed", embed), ("proxy", proxy)]);
        }
        let mut loss = Tensor::<Ad, 1>::zeros([1], &device);
        for (what, t) in outputs {
            let w = &arrays[&format!("w_{what}")];
            let w = npy::Array {
                shape: t.dims().to_vec(),
                data: w.data.clone(),
            };
            loss = loss + (t.clone() * tensor::<Ad, 2>(&w)).sum();
            results.push((what.to_string(), values(t.inner()), &arrays[what]));
        }
        results.extend(gradients(
            &arrays,
            "grad_d__",
            &d.gradients(&loss.backward()),
        ));
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// DiffAugment's draws a case handed to the authors' code (`aug_<draw>`).
fn augment_draws(arrays: &BTreeMap<String, npy::Array>) -> Draws {
    let floats = |k: &str| arrays[k].data.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let ints = |k: &str| arrays[k].data.iter().map(|&v| v as i64).collect::<Vec<_>>();
    Draws::DiffAugment(gan::train::diffaug::Draws {
        brightness: floats("aug_brightness"),
        saturation: floats("aug_saturation"),
        contrast: floats("aug_contrast"),
        translation: ints("aug_translation_x")
            .into_iter()
            .zip(ints("aug_translation_y"))
            .collect(),
        cutout: ints("aug_cutout_x")
            .into_iter()
            .zip(ints("aug_cutout_y"))
            .map(|(x, y)| (x as usize, y as usize))
            .collect(),
    })
}

/// StyleGAN2's R1 penalty (v0.4's `stylegan_cal_r1_reg`) through D's forward mode,
/// on the real images, through DiffAugment and through ADA, against the authors'
/// double backward: its value and every parameter's gradient.
#[test]
fn the_r1_penalty_of_stylegan2s_d_matches_the_reference_double_backward() {
    use gan::train::penalty::{Kind, Penalty, addend};
    let device = Default::default();
    let mut failures = Vec::new();
    for (case, config, dir, arrays) in stylegan2_cases() {
        let d = import::<Inner>(&dir.join("D.pth"), Network::Discriminator, &config, &device)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let labels: Vec<u32> = arrays["labels"].data.iter().map(|&v| v as u32).collect();
        let penalty = Penalty {
            kind: Kind::R1,
            lambda: 1.0,
        };
        let (diffaug, ada) = (
            augment_draws(&arrays),
            Draws::Ada(common::ada_draws(&arrays, "ada_")),
        );
        for (name, through) in [
            ("r1", None),
            ("r1_aug", Some(&diffaug)),
            ("r1_ada", Some(&ada)),
        ] {
            let mut d = Tensors::<Ad>::from_inner(d.tensors.clone(), true);
            let real = tensor::<Inner, 4>(&arrays["real"]);
            let (value, _) = addend(&penalty, &mut d, &config, real, &labels, through);
            let grads = d.gradients(&value.backward());
            let mut results = vec![(name.to_string(), values(value.inner()), &arrays[name])];
            results.extend(gradients(&arrays, &format!("grad_{name}__"), &grads));
            check(&case, &results, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// StyleGAN2's path length penalty (v0.4's `PathLengthRegularizer.cal_pl_reg`, weight
/// 2) through the synthesis network's forward mode, against the authors' double
/// backward with the same directions: its value, the running mean after it and every
/// parameter's gradient (the noise strengths' apart: their noise is drawn).
#[test]
fn the_path_length_penalty_matches_the_reference_double_backward() {
    use gan::stylegan2::PathLength;
    let device = Default::default();
    let mut failures = Vec::new();
    for (case, config, dir, arrays) in stylegan2_cases() {
        let g = import::<Inner>(&dir.join("G.pth"), Network::Generator, &config, &device)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut g = Tensors::<Ad>::from_inner(g.tensors, true);
        let z = tensor::<Inner, 2>(&arrays["pl_z"]);
        let y = labels(&arrays["pl_labels"]).inner();
        let size = config.image_size() as f64;
        let directions = tensor::<Inner, 4>(&arrays["pl_randn"]) / size;
        let penalty = PathLength {
            weight: 2.0,
            decay: 0.01,
        };
        let before = arrays["pl_mean_before"].data[0];
        let (value, mean) = penalty.addend(&mut g, &config, z, y, directions, before);
        let grads = g.gradients(&value.backward());
        let mut results = vec![
            ("pl".to_string(), values(value.inner()), &arrays["pl"]),
            ("pl_mean".to_string(), vec![mean], &arrays["pl_mean"]),
        ];
        results.extend(gradients(&arrays, "grad_pl__", &grads));
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
