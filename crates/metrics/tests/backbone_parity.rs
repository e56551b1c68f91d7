//! Parity of the ImageNet backbones with their reference code: every case of
//! `fixtures/backbones/` (made by `tools/fixtures/backbones.py`: the reference networks
//! on reduced sizes of the released architectures, random weights, float64) through our
//! network after each resize, within 1e-4 × max|expected|; and the full-size releases'
//! tensor names and shapes (`names/`) loading into the released architectures.

use std::collections::BTreeMap;
use std::path::Path;

use kernels::TestBackend as Backend;
use metrics::backbone::{self, Architecture, Backbone, ImageNetNetwork};
use metrics::inception::images_tensor;
use metrics::npy;
use metrics::resize::Resizer;
use metrics::tensors::Listing;

#[derive(serde::Deserialize)]
struct Config {
    backbone: Backbone,
    architecture: Architecture,
}

fn cases() -> Vec<std::path::PathBuf> {
    let root = fixtures::ours("backbones");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in {}", root.display());
    cases
}

/// The worst difference of one case and resizer, as a fraction of max|expected|.
fn compare(case: &Path, resizer: Resizer) -> f64 {
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(case.join("config.json")).unwrap()).unwrap();
    let device = Default::default();
    let weights = backbone::open(config.backbone, &case.join("weights.pth")).unwrap();
    let net = ImageNetNetwork::<Backend>::load(
        &weights,
        config.backbone,
        config.architecture,
        resizer,
        &device,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let expected = npy::read_npz(&case.join("expected.npz")).unwrap();
    let suffix = match resizer {
        Resizer::Legacy => "legacy",
        Resizer::Clean => "clean",
    };
    let mut worst: f64 = 0.0;
    let groups = expected.keys().filter(|k| k.starts_with("images_"));
    for key in groups {
        let images = &expected[key];
        let [n, h, w, 3] = images.shape[..] else {
            panic!("{key}: shape {:?}, not [n, h, w, 3]", images.shape)
        };
        let pixels: Vec<u8> = images.data.iter().map(|&v| v as u8).collect();
        let got = net
            .features(images_tensor(&pixels, n, h, w, &device))
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let want = &expected[&format!("features_{}_{suffix}", &key["images_".len()..])];
        assert_eq!(want.data.len(), got.len(), "{key}: feature count");
        let scale = want.data.iter().fold(0f64, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want.data)
            .map(|(&a, b)| (a as f64 - b).abs())
            .fold(0f64, f64::max);
        println!(
            "{} {suffix} {key} ({h}×{w}): worst |difference| {diff:.3e} of max {scale:.3}",
            case.display()
        );
        worst = worst.max(diff / scale);
    }
    worst
}

#[test]
fn every_backbone_matches_its_reference_after_either_resize() {
    let mut failures = Vec::new();
    for case in cases() {
        for resizer in [Resizer::Legacy, Resizer::Clean] {
            let worst = compare(&case, resizer);
            if worst > 1e-4 {
                failures.push(format!(
                    "{} with {resizer}: worst difference {worst:.3e} × max|expected|",
                    case.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Tensors of a release that the features do not use: SwAV's projection head and
/// prototypes, DINOv2's mask token (masked training only).
fn unused(backbone: Backbone, name: &str) -> bool {
    match backbone {
        Backbone::Swav => {
            name.starts_with("module.projection_head.") || name.starts_with("module.prototypes.")
        }
        Backbone::Dinov2 => name == "mask_token",
        _ => false,
    }
}

#[test]
fn full_size_releases_load_by_name_and_shape() {
    let dir = fixtures::ours("backbones").join("names");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no listing in {}", dir.display());
    #[derive(serde::Deserialize)]
    struct Names {
        backbone: Backbone,
        tensors: BTreeMap<String, Vec<usize>>,
    }
    for file in files {
        let names: Names = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let b = names.backbone;
        let listing = Listing::new(names.tensors, b.prefix());
        let device = Default::default();
        let net = ImageNetNetwork::<Backend>::load(
            &listing,
            b,
            b.architecture(),
            Resizer::Legacy,
            &device,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        drop(net);
        let left: Vec<String> = listing
            .left()
            .into_iter()
            .filter(|n| !unused(b, n))
            .collect();
        assert!(left.is_empty(), "{}: never read: {left:?}", file.display());
        println!("{}: every tensor of {b}'s release read", file.display());
    }
}
