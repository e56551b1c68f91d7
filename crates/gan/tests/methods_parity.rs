//! The methods beyond the paper's tables against the authors' code, through the
//! fixtures `tools/fixtures/` makes (`fixtures/<method>/` at the repository's root):
//! every case of each folder, its random draws given to both sides.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Autodiff;
use burn::prelude::*;
use gan::train::diffaug::{self, Draws};
use kernels::TestBackend as Inner;
use metrics::npy;

mod common;

type Ad = Autodiff<Inner>;

fn arrays(path: &Path) -> BTreeMap<String, npy::Array> {
    npy::read_npz(path).unwrap_or_else(|e| panic!("{e}"))
}

fn tensor<const D: usize>(a: &npy::Array, device: &burn::tensor::Device<Ad>) -> Tensor<Ad, D> {
    let v: Vec<f32> = a.data.iter().map(|&v| v as f32).collect();
    let shape: [usize; D] = a.shape.clone().try_into().expect("the array's rank");
    Tensor::<Ad, 1>::from_floats(v.as_slice(), device).reshape(shape)
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().expect("f64 values")
}

/// The largest difference from `expected`, and its largest magnitude.
fn worst(got: &[f64], expected: &npy::Array) -> (f64, f64) {
    assert_eq!(got.len(), expected.data.len());
    let scale = expected.data.iter().fold(0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&expected.data)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    (diff, scale)
}

/// An augmentation of a case's images `x` against the reference's `out`, and the
/// gradient of sum(out · weight) in the images against its `grad_x`, within 1e-5 of the
/// largest.
fn augmented_like_the_reference(
    name: &str,
    a: &BTreeMap<String, npy::Array>,
    augment: impl Fn(Tensor<Ad, 4>) -> Tensor<Ad, 4>,
) {
    let device = Default::default();
    let x = tensor::<4>(&a["x"], &device).require_grad();
    let out = augment(x.clone());
    let (diff, scale) = worst(&values(out.clone()), &a["out"]);
    println!("{name} images: max |Δ| {diff:e}, max |expected| {scale:e}");
    assert!(
        diff <= 1e-5 * scale.max(1.0),
        "{name}: images differ by {diff:e}"
    );
    let grads = (out * tensor::<4>(&a["weight"], &device)).sum().backward();
    let (diff, scale) = worst(&values(x.grad(&grads).unwrap()), &a["grad_x"]);
    println!("{name} gradient: max |Δ| {diff:e}, max |expected| {scale:e}");
    assert!(
        diff <= 1e-5 * scale.max(1.0),
        "{name}: gradients differ by {diff:e}"
    );
}

#[test]
fn diffaugment_images_and_gradients_match_the_reference() {
    for case in fixtures::cases(&fixtures::ours("diffaug")) {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(&case);
        let floats = |k: &str| a[k].data.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let ints = |k: &str| a[k].data.iter().map(|&v| v as i64).collect::<Vec<_>>();
        let draws = Draws {
            brightness: floats("brightness"),
            saturation: floats("saturation"),
            contrast: floats("contrast"),
            translation: ints("translation_x")
                .into_iter()
                .zip(ints("translation_y"))
                .collect(),
            cutout: ints("cutout_x")
                .into_iter()
                .zip(ints("cutout_y"))
                .map(|(x, y)| (x as usize, y as usize))
                .collect(),
        };
        augmented_like_the_reference(&name, &a, |x| diffaug::apply(x, &draws));
    }
}

/// ADA's pipeline (v0.4's `AdaAugment`) for the draws and p each case handed to the
/// authors' code: the augmented images and the gradient of sum(out · weight) in the
/// images. The transforms a case's draws name are its pipeline.
#[test]
fn ada_images_and_gradients_match_the_reference() {
    use gan::train::ada;
    let cases = fixtures::cases(&fixtures::ours("ada"));
    for case in &cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(case);
        let draws = common::ada_draws(&a, "");
        assert!(!draws.transforms.is_empty(), "{name}: no transform's draws");
        augmented_like_the_reference(&name, &a, |x| ada::apply(x, &draws));
    }
}

#[test]
fn lecam_averages_penalty_and_gradients_match_the_reference() {
    use gan::config::LeCamConfig;
    use gan::train::lecam::{LeCam, penalty};
    let device = Default::default();
    for case in fixtures::cases(&fixtures::ours("lecam")) {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(&case);
        let lecam = LeCam::new(LeCamConfig {
            lambda: 1.0,
            ema_start_iter: a["start"].data[0] as u64,
            ema_decay: a["decay"].data[0],
        });
        let n = a["real"].shape[1];
        let row = |k: &str, s: usize| a[k].data[s * n..(s + 1) * n].to_vec();
        let mut active = 0;
        for (s, &step) in a["step"].data.iter().enumerate() {
            let mean = |k: &str| {
                let v = row(k, s);
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                Tensor::<Ad, 1>::from_data([mean], (&device, burn::tensor::DType::F64))
            };
            let averages = lecam.update(mean("real"), mean("fake"), step as u64);
            for (got, want) in [
                (values(averages.real.clone())[0], a["ema_real"].data[s]),
                (values(averages.fake.clone())[0], a["ema_fake"].data[s]),
            ] {
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{name} sub-step {s}: average {got} vs {want}"
                );
            }
            if !lecam.active(step as u64) {
                assert_eq!(
                    a["penalty"].data[s], 0.0,
                    "{name} sub-step {s}: active in the reference"
                );
                continue;
            }
            active += 1;
            let logits = |k: &str| {
                let v: Vec<f32> = row(k, s).iter().map(|&v| v as f32).collect();
                Tensor::<Ad, 1>::from_floats(v.as_slice(), &device).require_grad()
            };
            let (real, fake) = (logits("real"), logits("fake"));
            let value = penalty(real.clone(), fake.clone(), averages);
            let got = values(value.clone())[0];
            let want = a["penalty"].data[s];
            assert!(
                (got - want).abs() <= 1e-5 * want.abs(),
                "{name} sub-step {s}: penalty {got} vs {want}"
            );
            let grads = value.backward();
            for (key, t) in [("grad_real", real), ("grad_fake", fake)] {
                let got = values(t.grad(&grads).unwrap());
                let want = &row(key, s);
                let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
                let diff = got
                    .iter()
                    .zip(want)
                    .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    diff <= 1e-5 * scale,
                    "{name} sub-step {s} {key}: max |Δ| {diff:e}"
                );
            }
        }
        println!(
            "{name}: {} sub-steps, {active} with the penalty",
            a["step"].data.len()
        );
        assert!(active > 0, "{name}: the case never reaches the penalty");
    }
}

#[test]
fn data_to_data_cross_entropy_and_gradients_match_the_reference() {
    let device = Default::default();
    for case in fixtures::cases(&fixtures::ours("d2dce")) {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(&case);
        let (embed, proxy) = (
            tensor::<2>(&a["embed"], &device).require_grad(),
            tensor::<2>(&a["proxy"], &device).require_grad(),
        );
        let labels: Vec<u32> = a["labels"].data.iter().map(|&v| v as u32).collect();
        let value = gan::loss::data_to_data(
            embed.clone(),
            proxy.clone(),
            &labels,
            a["m_p"].data[0],
            a["temperature"].data[0],
        );
        let (got, want) = (values(value.clone())[0], a["loss"].data[0]);
        println!("{name}: loss {got} vs {want}");
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "{name}: loss {got} vs {want}"
        );
        let grads = value.backward();
        for (key, t) in [("grad_embed", embed), ("grad_proxy", proxy)] {
            let (diff, scale) = worst(&values(t.grad(&grads).unwrap()), &a[key]);
            println!("{name} {key}: max |Δ| {diff:e}, max |expected| {scale:e}");
            assert!(diff <= 1e-5 * scale, "{name} {key}: max |Δ| {diff:e}");
        }
    }
}

#[test]
fn the_loaders_augmented_copies_match_the_seeds() {
    for case in fixtures::cases(&fixtures::ours("consistency/views")) {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(&case);
        let [n, c, h, w] = a["images"].shape.clone().try_into().expect("N×C×H×W");
        let size = c * h * w;
        for index in 0..n {
            // The image as the loader gives it: in [-1, 1], CHW.
            let image: Vec<f32> = a["images"].data[index * size..(index + 1) * size]
                .iter()
                .map(|&v| v as f32 / 127.5 - 1.0)
                .collect();
            let mut view = vec![0f32; size];
            data::views::augmented_view(&image, c, h, w, index, &mut view);
            let want = &a["augmented"].data[index * size..(index + 1) * size];
            let diff = view
                .iter()
                .zip(want)
                .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs()));
            assert!(diff <= 1e-6, "{name}, index {index}: differs by {diff:e}");
        }
        println!("{name}: {n} copies of {h}×{w}");
    }
}

#[test]
fn contrastive_loss_with_augmented_positives_matches_the_seed() {
    let device = Default::default();
    for case in fixtures::cases(&fixtures::ours("consistency/positives")) {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let a = arrays(&case);
        let [embed, anchor, views] =
            ["embed", "anchor", "augmented"].map(|k| tensor::<2>(&a[k], &device).require_grad());
        let labels: Vec<u32> = a["labels"].data.iter().map(|&v| v as u32).collect();
        let t = a["temperature"].data[0];
        let value = gan::loss::contrastive(
            embed.clone(),
            anchor.clone(),
            &labels,
            t,
            true,
            Some(views.clone()),
        );
        let (got, want) = (values(value.clone())[0], a["loss"].data[0]);
        println!("{name}: loss {got} vs {want}");
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "{name}: loss {got} vs {want}"
        );
        let grads = value.backward();
        for (key, t) in [
            ("grad_embed", embed),
            ("grad_anchor", anchor),
            ("grad_augmented", views),
        ] {
            let (diff, scale) = worst(&values(t.grad(&grads).unwrap()), &a[key]);
            println!("{name} {key}: max |Δ| {diff:e}, max |expected| {scale:e}");
            assert!(diff <= 1e-5 * scale, "{name} {key}: max |Δ| {diff:e}");
        }
    }
}
