//! StyleGAN2's discriminator against the authors' `Discriminator`, through every case
//! of `fixtures/stylegan2_d/` (made by `tools/fixtures/stylegan2_d.py` in float64): the
//! authors' state loaded name for name, the outputs of each head for given images and
//! labels, and the gradients of Σ sum(output · w) for every parameter and the images.

mod common;

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::layers::{Mode, Scope};
use gan::stylegan2::discriminator::{Blocks, Discriminator, Head, forward};
use gan::tensors::Tensors;
use kernels::TestBackend as Inner;

use common::{cases, check, gradients, state, tensor, values};

type Ad = Autodiff<Inner>;

#[test]
fn the_discriminator_matches_the_reference_for_every_case() {
    let mut failures = Vec::new();
    for (case, c, arrays) in cases("stylegan2_d") {
        let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{case}: no `{k}`")) as usize;
        let net = Discriminator {
            resolution: num("resolution"),
            img_channels: num("img_channels"),
            channel_base: num("channel_base"),
            channel_max: num("channel_max"),
            blocks: match c["architecture"].as_str() {
                Some("orig") => Blocks::Orig,
                Some("resnet") => Blocks::Resnet,
                other => panic!("{case}: architecture {other:?}"),
            },
            mbstd_group_size: c["mbstd_group_size"].as_u64().map(|g| g as usize),
            mbstd_num_channels: num("mbstd_num_channels"),
        };
        let adc = c["aux_cls_type"] == "ADC";
        let classes = num("num_classes") * if adc { 2 } else { 1 };
        let normalize = c["normalize_d_embed"].as_bool().unwrap();
        let head = match c["d_cond_mtd"].as_str() {
            Some("W/O") => Head::Plain,
            Some("SPD") => Head::Projection {
                classes,
                mapping_layers: num("mapping_layers"),
            },
            Some("AC") => Head::Classifier { classes, normalize },
            Some("2C" | "D2DCE") => Head::Embedding {
                classes,
                dim: num("d_embed_dim"),
                normalize,
            },
            other => panic!("{case}: conditioning {other:?}"),
        };
        let mut tensors = Tensors::<Ad>::from_inner(state(&arrays, &[]), true);
        let img = tensor::<Ad, 4>(&arrays["img"]).require_grad();
        let labels: Vec<i64> = arrays["labels"].data.iter().map(|&v| v as i64).collect();
        let n = labels.len();
        let y = Tensor::<Ad, 1, Int>::from_data(TensorData::new(labels, [n]), &Default::default());
        let out = {
            let mut s = Scope::new(&mut tensors, Mode::TRAIN);
            forward(&mut s, &net, &head, img.clone(), y)
        };
        let mut outputs = vec![("adv", out.adv.reshape([n, 1]))];
        if let Some(logits) = out.class_logits {
            outputs.push(("cls", logits));
        }
        if let Some((embed, proxy)) = out.contrastive {
            outputs.extend([("embed", embed), ("proxy", proxy)]);
        }
        let expected: Vec<&str> = ["adv", "cls", "embed", "proxy"]
            .into_iter()
            .filter(|k| arrays.contains_key(*k))
            .collect();
        let got: Vec<&str> = outputs.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "{case}: outputs {got:?}, expected {expected:?}"
        );
        let mut loss = Tensor::<Ad, 1>::zeros([1], &Default::default());
        let mut results = Vec::new();
        for (what, t) in outputs {
            let w = &arrays[&format!("w_{what}")];
            let weights = tensor::<Ad, 2>(&npy_2d(w, t.dims()));
            loss = loss + (t.clone() * weights).sum();
            results.push((what.to_string(), values(t.inner()), &arrays[what]));
        }
        let backward = loss.backward();
        let grad_img = img
            .grad(&backward)
            .expect("D's outputs depend on the images");
        results.push((
            "grad_img".to_string(),
            values(grad_img),
            &arrays["grad_img"],
        ));
        results.extend(gradients(&arrays, "grad__", &tensors.gradients(&backward)));
        check(&case, &results, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The array `a` seen as `[rows, cols]` (the adversarial weights are stored `[n]`).
fn npy_2d(a: &metrics::npy::Array, [rows, cols]: [usize; 2]) -> metrics::npy::Array {
    assert_eq!(a.data.len(), rows * cols, "weights of {rows}×{cols}");
    metrics::npy::Array {
        shape: vec![rows, cols],
        data: a.data.clone(),
    }
}
