//! Our GANs against the authors' model code, through the fixtures of
//! `studiogan/` (every case of cases.json: imported checkpoints, outputs in eval and
//! train mode, gradients of two fixed losses for every parameter) and `losses/` (the 2C
//! loss and its gradients).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::config::{
    Architecture, Attention, Conditioning, DEFAULT_CONV_DIM, LatentOpConfig, ModelConfig,
    TrainConfig,
};
use gan::import::{Network, import};
use gan::layers::Mode;
use gan::tensors::Tensors;
use gan::train::latent::{Shift, Side};
use gan::train::objective::Objective;
use gan::train::penalty::{Kind, Penalty};
use gan::train::term::{DPass, GPass};
use gan::{discriminator, generator, loss};
use kernels::TestBackend as Inner;
use metrics::npy;

type Ad = Autodiff<Inner>;

fn arrays(path: &Path) -> BTreeMap<String, npy::Array> {
    npy::read_npz(path).unwrap_or_else(|e| panic!("{e}"))
}

fn model(case: &str, c: &serde_json::Value) -> ModelConfig {
    let text = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{case}: no `{k}`"));
    let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{case}: no `{k}`")) as usize;
    let flag = |k: &str| c[k].as_bool().unwrap_or_else(|| panic!("{case}: no `{k}`"));
    let architecture = Architecture::from_reference_name(text("architecture"))
        .unwrap_or_else(|| panic!("{case}: unknown architecture {}", text("architecture")));
    let conditioning = match text("conditioning") {
        "contra" => Conditioning::Contrastive,
        "proj" => Conditioning::Projection,
        "ac" => Conditioning::Acgan,
        "no" | "none" => Conditioning::None,
        other => panic!("{case}: unknown conditioning {other}"),
    };
    let config = ModelConfig {
        architecture,
        conditioning,
        num_classes: num("num_classes"),
        z_dim: num("z_dim"),
        shared_dim: c["shared_dim"].as_u64().unwrap_or(128) as usize,
        // The authors' dcgan32 configs write "N/A" for its fixed widths.
        g_conv_dim: match architecture.fixed_widths() {
            true => DEFAULT_CONV_DIM,
            false => num("g_conv_dim"),
        },
        d_conv_dim: match architecture.fixed_widths() {
            true => DEFAULT_CONV_DIM,
            false => num("d_conv_dim"),
        },
        hyper_dim: c["hyper_dim"].as_u64().unwrap_or(512) as usize,
        nonlinear_embed: c["nonlinear_embed"].as_bool().unwrap_or(false),
        normalize_embed: c["normalize_embed"].as_bool().unwrap_or(true),
        g_spectral_norm: flag("g_spectral_norm"),
        d_spectral_norm: flag("d_spectral_norm"),
        attention: flag("attention").then(|| Attention {
            g_after_block: num("at_after_th_gen_block"),
            d_after_block: num("at_after_th_dis_block"),
        }),
        leaky_relu: c["leaky_relu"].as_bool().unwrap_or(false),
        g_init: Default::default(),
        d_init: Default::default(),
        image_size: None,
        aux_cls_type: Default::default(),
        stylegan2: None,
    };
    assert_eq!(config.image_size(), num("img_size"), "{case}: image size");
    config
}

/// The checkpoint of `network` for `case` (`<case>_model=G-….pth`).
fn checkpoint(dir: &Path, case: &str, network: &str) -> PathBuf {
    let prefix = format!("{case}_model={network}-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".pth")
        })
        .unwrap_or_else(|| panic!("{case}: no {prefix}*.pth in {}", dir.display()))
}

struct Inputs<B: Backend> {
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    labels: Vec<u32>,
    x: Tensor<B, 4>,
}

fn inputs<B: Backend>(a: &BTreeMap<String, npy::Array>) -> Inputs<B> {
    let device = Default::default();
    let float = |k: &str| {
        let v: Vec<f32> = a[k].data.iter().map(|&v| v as f32).collect();
        (v, a[k].shape.clone())
    };
    let (z, zs) = float("z");
    let (x, xs) = float("x");
    let labels: Vec<u32> = a["y"].data.iter().map(|&v| v as u32).collect();
    let y: Vec<i64> = labels.iter().map(|&v| v as i64).collect();
    Inputs {
        z: Tensor::from_data(TensorData::new(z, [zs[0], zs[1]]), &device),
        y: Tensor::from_data(TensorData::new(y, [labels.len()]), &device),
        labels,
        x: Tensor::from_data(TensorData::new(x, [xs[0], xs[1], xs[2], xs[3]]), &device),
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

/// Checks within 1e-4 × max|expected| + 1e-5; returns the failure, if any.
fn compare(what: &str, got: &[f64], expected: &npy::Array) -> Option<String> {
    assert_eq!(got.len(), expected.data.len(), "{what}: size");
    let scale = expected.data.iter().fold(0f64, |m, v| m.max(v.abs()));
    let tolerance = 1e-4 * scale + 1e-5;
    let worst = got
        .iter()
        .zip(&expected.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max);
    println!("{what}: max |Δ| {worst:.3e} (tolerance {tolerance:.3e}, max |expected| {scale:.3e})");
    (worst > tolerance).then(|| format!("{what}: max |Δ| {worst:e} > {tolerance:e}"))
}

/// Every case of the shared `studiogan/` fixtures and of ours (`fixtures/studiogan128/`,
/// the 128×128 networks, made by `tools/fixtures/studiogan128.py`), with its folder.
fn cases() -> Vec<(PathBuf, String, serde_json::Value)> {
    [fixtures::dir("studiogan"), fixtures::ours("studiogan128")]
        .iter()
        .flat_map(|dir| cases_in(dir))
        .collect()
}

/// The cases of `dir/cases.json`, with their folder.
fn cases_in(dir: &Path) -> Vec<(PathBuf, String, serde_json::Value)> {
    let path = dir.join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    cases
        .into_iter()
        .map(|(case, c)| (dir.to_path_buf(), case, c))
        .collect()
}

/// The loss `value` and its gradient for every parameter of `tensors` against the
/// reference's `{net}_loss` and `{net}__p__…` entries (the studiogan/ fixtures' rules);
/// failures are added to `failures`.
fn check_gradients(
    case: &str,
    net: &str,
    tensors: &Tensors<Ad>,
    value: Tensor<Ad, 1>,
    reference: &BTreeMap<String, npy::Array>,
    failures: &mut Vec<String>,
) {
    let loss = values(value.clone())[0];
    let grads = tensors.gradients(&value.backward());
    check_gradient_map(case, net, tensors, loss, &grads, reference, failures);
}

/// As [`check_gradients`], for a loss and gradients computed already.
fn check_gradient_map(
    case: &str,
    net: &str,
    tensors: &Tensors<Ad>,
    got_loss: f64,
    grads: &BTreeMap<String, Tensor<Inner, 1>>,
    reference: &BTreeMap<String, npy::Array>,
    failures: &mut Vec<String>,
) {
    let want_loss = reference[&format!("{net}_loss")].data[0];
    println!("{case} {net}_loss: {got_loss} vs {want_loss}");
    if (got_loss - want_loss).abs() > 1e-4 * want_loss.abs().max(1.0) {
        failures.push(format!("{case} {net}_loss: {got_loss} vs {want_loss}"));
    }
    let prefix = format!("{net}__");
    let norms: Vec<(&str, f64)> = reference
        .iter()
        .filter_map(|(k, v)| {
            let p = k.strip_prefix(&prefix)?.strip_suffix("__norm")?;
            Some((p, v.data[0]))
        })
        .collect();
    assert!(
        !norms.is_empty(),
        "{case}: no {net} gradients in the fixture"
    );
    let largest = norms.iter().fold(0f64, |m, (_, n)| m.max(*n));
    // A parameter the reference holds unused (left out by the import) has no gradient.
    let (norms, unused): (Vec<_>, Vec<_>) = norms
        .into_iter()
        .partition(|(p, _)| tensors.get(p).is_some());
    for (p, norm) in unused {
        if norm != 0.0 {
            failures.push(format!(
                "{case} {net} {p}: the fixture's gradient {norm:e} is of a tensor we lack"
            ));
        }
    }
    let params = tensors
        .iter()
        .filter(|(_, e)| e.role == gan::tensors::Role::Param)
        .count();
    assert_eq!(
        norms.len(),
        params,
        "{case}: {net} parameters in the fixture vs ours"
    );
    let mut worst = 0f64;
    for (p, want_norm) in norms {
        let grad = grads
            .get(p)
            .map(|g| values(g.clone()))
            .unwrap_or_else(|| vec![0.0; tensors.get(p).map_or(0, |e| e.shape.iter().product())]);
        let f32err = reference[&format!("{net}__{p}__f32err")].data[0];
        let norm = grad.iter().map(|v| v * v).sum::<f64>().sqrt();
        let allowed = 1e-3 * want_norm + 1e-5 * largest + 10.0 * f32err;
        let off = (norm - want_norm).abs();
        worst = worst.max(off / allowed);
        if off > allowed {
            failures.push(format!(
                "{case} {net} {p}: gradient norm {norm:e} vs {want_norm:e}"
            ));
        }
        let head = &reference[&format!("{net}__{p}__head")].data;
        let head_max = head.iter().fold(0f64, |m, v| m.max(v.abs()));
        let allowed = 1e-3 * head_max + 1e-5 * largest + 10.0 * f32err;
        for (i, (a, b)) in grad.iter().zip(head).enumerate() {
            worst = worst.max((a - b).abs() / allowed);
            if (a - b).abs() > allowed {
                failures.push(format!("{case} {net} {p}[{i}]: gradient {a:e} vs {b:e}"));
                break;
            }
        }
    }
    println!("{case} {net}: worst gradient error {worst:.3} of its tolerance");
}

#[test]
fn imported_checkpoints_match_the_reference_outputs() {
    let mut failures = Vec::new();
    for (dir, case, c) in &cases() {
        let (dir, case) = (dir.as_path(), case.as_str());
        let config = model(case, c);
        let expected = arrays(&dir.join(format!("{case}_expected.npz")));
        let input = inputs::<Inner>(&expected);
        let device = Default::default();
        let g_file = checkpoint(dir, case, "G");
        let d_file = checkpoint(dir, case, "D");
        let load = |path: &Path, network| {
            import::<Inner>(path, network, &config, &device).unwrap_or_else(|e| panic!("{e}"))
        };
        let g = load(&g_file, Network::Generator);
        let d = load(&d_file, Network::Discriminator);
        // The reference counts the tensors its network holds unused; we leave them out.
        for (net, imported) in [("g", &g), ("d", &d)] {
            let ignored: usize = imported.ignored.iter().map(|(_, n)| n).sum();
            assert_eq!(
                (imported.tensors.parameter_count() + ignored) as u64,
                c[format!("{net}_params")].as_u64().unwrap(),
                "{case}: {net} parameters"
            );
        }
        let (g, d) = (g.tensors, d.tensors);

        let mut checked = 0;
        for (mode, tag) in [(Mode::EVAL, "eval"), (Mode::TRAIN, "train")] {
            // Each mode starts from the checkpoint, as the fixture's forwards did.
            let key = format!("g_{tag}");
            if let Some(want) = expected.get(&key) {
                let out = generator::run(
                    &mut g.clone(),
                    mode,
                    &config,
                    input.z.clone(),
                    input.y.clone(),
                );
                failures.extend(compare(&format!("{case} {key}"), &values(out), want));
                checked += 1;
            }
            let out = discriminator::run(
                &mut d.clone(),
                mode,
                &config,
                input.x.clone(),
                input.y.clone(),
            );
            let mut outputs = vec![("adv", values(out.adv))];
            if let Some(logits) = out.class_logits {
                outputs.push(("cls", values(logits)));
            }
            if let Some((embed, anchor)) = out.contrastive {
                outputs.push(("cls", values(embed)));
                outputs.push(("anchor", values(anchor)));
            }
            for (name, got) in outputs {
                let key = format!("d_{tag}_{name}");
                let want = expected
                    .get(&key)
                    .unwrap_or_else(|| panic!("{case}: no `{key}`"));
                failures.extend(compare(&format!("{case} {key}"), &got, want));
                checked += 1;
            }
        }
        let outputs = expected
            .keys()
            .filter(|k| k.starts_with("g_") || k.starts_with("d_"))
            .count();
        assert_eq!(checked, outputs, "{case}: every expected output is checked");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gradients_match_the_reference_for_every_parameter() {
    let mut failures = Vec::new();
    for (dir, case, c) in &cases() {
        let (dir, case) = (dir.as_path(), case.as_str());
        let config = model(case, c);
        let expected = arrays(&dir.join(format!("{case}_expected.npz")));
        let reference = arrays(&dir.join(format!("{case}_grads.npz")));
        let input = inputs::<Ad>(&expected);
        let device = Default::default();
        let load = |network, name| {
            let inner = import::<Inner>(&checkpoint(dir, case, name), network, &config, &device)
                .unwrap_or_else(|e| panic!("{e}"))
                .tensors;
            Tensors::<Ad>::from_inner(inner, true)
        };

        let mut d = load(Network::Discriminator, "D");
        let out = discriminator::run(
            &mut d,
            Mode::TRAIN,
            &config,
            input.x.clone(),
            input.y.clone(),
        );
        let mut d_loss = burn::tensor::activation::relu(-out.adv + 1.0).mean();
        if let Some(logits) = out.class_logits {
            d_loss = d_loss + loss::cross_entropy(logits, input.y.clone());
        }
        if let Some((embed, anchor)) = out.contrastive {
            d_loss = d_loss + loss::contrastive(embed, anchor, &input.labels, 1.0, true, None);
        }
        let mut g = load(Network::Generator, "G");
        let images = generator::run(
            &mut g,
            Mode::TRAIN,
            &config,
            input.z.clone(),
            input.y.clone(),
        );
        let w = &reference["g_loss_weight"];
        let w: Vec<f32> = w.data.iter().map(|&v| v as f32).collect();
        let weight = Tensor::<Ad, 1>::from_floats(w.as_slice(), &device).reshape(images.dims());
        let g_loss = (images * weight).sum();

        for (net, tensors, value) in [("d", &d, d_loss), ("g", &g, g_loss)] {
            check_gradients(case, net, tensors, value, &reference, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The gradient penalties (`fixtures/penalty/`, made by `tools/fixtures/penalty.py`):
/// for every case, the penalty of the authors' D at the case's points and its gradient
/// for every parameter (a gradient of a gradient), against PyTorch's double backward in
/// float64, within the studiogan/ fixtures' tolerances.
#[test]
fn gradient_penalties_and_their_gradients_match_the_reference() {
    let mut failures = Vec::new();
    for (dir, case, c) in &cases_in(&fixtures::ours("penalty")) {
        let (dir, case) = (dir.as_path(), case.as_str());
        let config = model(case, c);
        let kind = match c["penalty"].as_str() {
            Some("gp") => Kind::Gp,
            Some("dra") => Kind::Dra,
            Some("maxgp") => Kind::MaxGp,
            Some("r1") => Kind::R1,
            other => panic!("{case}: unknown penalty {other:?}"),
        };
        let a = arrays(&dir.join(format!("{case}_inputs.npz")));
        let reference = arrays(&dir.join(format!("{case}_grads.npz")));
        let device = Default::default();
        let images = |k: &str| {
            let v: Vec<f32> = a[k].data.iter().map(|&v| v as f32).collect();
            let s = &a[k].shape;
            Tensor::<Inner, 1>::from_floats(v.as_slice(), &device).reshape([s[0], s[1], s[2], s[3]])
        };
        let labels: Vec<u32> = a["y"].data.iter().map(|&v| v as u32).collect();
        let draws: Vec<Vec<f32>> = (0..)
            .map_while(|i| a.get(&format!("draw{i}")))
            .map(|d| d.data.iter().map(|&v| v as f32).collect())
            .collect();
        let inner = import::<Inner>(
            &checkpoint(dir, case, "D"),
            Network::Discriminator,
            &config,
            &device,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .tensors;
        let mut d = Tensors::<Ad>::from_inner(inner, true);
        if kind == Kind::R1 {
            // R1 takes the gradient of the step's pass over the real images.
            let x = Tensor::from_inner(images("x"));
            let y = Tensor::<Ad, 1, Int>::from_ints(
                labels
                    .iter()
                    .map(|&l| l as i64)
                    .collect::<Vec<_>>()
                    .as_slice(),
                &device,
            );
            discriminator::run(&mut d, Mode::TRAIN, &config, x, y);
        }
        let penalty = Penalty { kind, lambda: 1.0 };
        let points = penalty.points(images("x"), images("fake"), &draws);
        let value = gan::train::penalty::addend(&penalty, &mut d, &config, points, &labels, None).0;
        check_gradients(case, "d", &d, value, &reference, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// LOGAN's D and G sub-steps as the seed's `run` makes them: z moved along D(G(z))'s
/// gradient, each loss and its gradient for every parameter through that move (a
/// gradient of a gradient, through G and D), against PyTorch's double backward in
/// float64, within the studiogan/ fixtures' tolerances.
#[test]
fn latent_optimization_and_its_gradients_match_the_reference() {
    let mut failures = Vec::new();
    for (dir, case, c) in &cases_in(&fixtures::ours("logan")) {
        let (dir, case) = (dir.as_path(), case.as_str());
        let config = model(case, c);
        let op: LatentOpConfig = serde_json::from_value(c["latent_op"].clone())
            .unwrap_or_else(|e| panic!("{case}: latent_op: {e}"));
        let train: TrainConfig = serde_json::from_value(serde_json::json!({
            "batch_size": 2, "total_steps": 1, "d_steps_per_iter": 1, "g_lr": 1e-4,
            "d_lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "adv_loss": "Hinge",
            "latent_op": c["latent_op"],
        }))
        .unwrap();
        let objective = Objective::<Ad>::new(&config, &train);
        let a = arrays(&dir.join(format!("{case}_inputs.npz")));
        let reference = arrays(&dir.join(format!("{case}_grads.npz")));
        let inner = inputs::<Inner>(&a);
        let Inputs { y, labels, x, .. } = inputs::<Ad>(&a);
        // The seed's drop mask: `uniform > 1 − rate`, in float32.
        let threshold = (1.0 - op.rate) as f32;
        let keep: Vec<bool> = a["keep_draws"]
            .data
            .iter()
            .map(|&u| u as f32 > threshold)
            .collect();
        let device = Default::default();
        let network = |tag, network| {
            import::<Inner>(&checkpoint(dir, case, tag), network, &config, &device)
                .unwrap_or_else(|e| panic!("{e}"))
                .tensors
        };
        let (g0, d0) = (
            network("G", Network::Generator),
            network("D", Network::Discriminator),
        );
        let shift = |g: &Tensors<Inner>, d: &Tensors<Inner>| {
            Shift::new(
                &op,
                g.clone(),
                d.clone(),
                &config,
                inner.z.clone(),
                &labels,
                &keep,
            )
        };

        // D: the real images, G's images of the moved z, the fakes.
        let moved = shift(&g0, &d0);
        let mut d = Tensors::<Ad>::from_inner(d0.clone(), true);
        let mut g = Tensors::<Ad>::from_inner(g0.clone(), false);
        let real = discriminator::run(&mut d, Mode::TRAIN, &config, x, y.clone());
        let images = generator::run(&mut g, Mode::TRAIN, &config, moved.moved(), y.clone());
        let fake = discriminator::run(&mut d, Mode::TRAIN, &config, images, y.clone());
        let value = objective.discriminator(&DPass {
            step: 0,
            real: &real,
            real_labels: &labels,
            real_views: None,
            fake: &fake,
            fake_labels: &labels,
        });
        let loss = values(value.clone())[0];
        let backward = value.backward();
        let mut grads = d.gradients(&backward);
        moved.add_gradients(&backward, &config, Side::Discriminator, &mut grads);
        check_gradient_map(case, "d", &d, loss, &grads, &reference, &mut failures);

        // G, from the saved networks again.
        let moved = shift(&g0, &d0);
        let mut g = Tensors::<Ad>::from_inner(g0, true);
        let mut d = Tensors::<Ad>::from_inner(d0, false);
        let images = generator::run(&mut g, Mode::TRAIN, &config, moved.moved(), y.clone());
        let fake = discriminator::run(&mut d, Mode::TRAIN, &config, images, y);
        let value = objective.generator(&GPass {
            fake: &fake,
            labels: &labels,
            adc_fake: None,
        });
        let loss = values(value.clone())[0];
        let backward = value.backward();
        let mut grads = g.gradients(&backward);
        moved.add_gradients(&backward, &config, Side::Generator, &mut grads);
        check_gradient_map(case, "g", &g, loss, &grads, &reference, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn contrastive_loss_and_gradients_match_the_reference() {
    let dir = fixtures::dir("losses");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert!(!expected.is_empty());
    let device = Default::default();
    for (case, want) in &expected {
        let a = arrays(&dir.join(format!("{case}.npz")));
        let matrix = |k: &str| {
            let v: Vec<f32> = a[k].data.iter().map(|&v| v as f32).collect();
            Tensor::<Ad, 1>::from_floats(v.as_slice(), &device)
                .reshape([a[k].shape[0], a[k].shape[1]])
                .require_grad()
        };
        let (embed, proxy) = (matrix("embed"), matrix("proxy"));
        let labels: Vec<u32> = a["labels"].data.iter().map(|&v| v as u32).collect();
        let t = a["temperature"].data[0];
        let value = loss::contrastive(embed.clone(), proxy.clone(), &labels, t, true, None);
        let got = values(value.clone())[0];
        let want = want.as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "{case}: loss {got} vs {want}"
        );
        let grads = value.backward();
        for (name, t) in [("grad_embed", embed), ("grad_proxy", proxy)] {
            let got = values(t.grad(&grads).unwrap());
            let want = &a[name].data;
            let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            let worst = got
                .iter()
                .zip(want)
                .map(|(x, y)| (x - y).abs())
                .fold(0f64, f64::max);
            println!("{case} {name}: max |Δ| {worst:e}, max |expected| {scale:e}");
            assert!(
                worst <= 1e-5 * scale,
                "{case} {name}: max |Δ| {worst:e} > 1e-5 × {scale:e}"
            );
        }
    }
}
