//! Our networks under the authors' state-dict names and shapes, so that their
//! checkpoints import: every case of `fixtures/names/` (made by
//! `tools/fixtures/names.py` from the authors' model code), each the tensors of a
//! generator and a discriminator the authors' constructors build for a configuration.

use std::collections::BTreeMap;

use burn::backend::Flex;
use gan::config::{Architecture, Attention, Conditioning, ModelConfig};
use gan::init::Scheme;
use gan::tensors::Tensors;
use gan::{discriminator, generator};
use serde_json::Value;

fn shapes(tensors: &Tensors<Flex>) -> BTreeMap<String, Vec<usize>> {
    tensors
        .iter()
        .map(|(name, entry)| (name.clone(), entry.shape.clone()))
        .collect()
}

fn theirs(value: &Value) -> BTreeMap<String, Vec<usize>> {
    serde_json::from_value(value.clone()).expect("name → shape")
}

#[test]
fn every_network_has_the_authors_names_and_shapes() {
    let dir = fixtures::ours("names");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let device = Default::default();
    for case in cases {
        let json: Value = serde_json::from_slice(&std::fs::read(&case).unwrap()).unwrap();
        let c = &json["config"];
        let int = |k: &str| c[k].as_u64().unwrap() as usize;
        let name = c["architecture"].as_str().unwrap();
        let architecture = Architecture::from_reference_name(name)
            .unwrap_or_else(|| panic!("{}: unknown architecture {name}", case.display()));
        let conditioning = match c["conditioning"].as_str().unwrap() {
            "ac" => Conditioning::Acgan,
            "proj" => Conditioning::Projection,
            "contra" => Conditioning::Contrastive,
            "none" => Conditioning::None,
            other => panic!("{}: unknown conditioning {other}", case.display()),
        };
        let attention = c["attention"].as_array().map(|a| Attention {
            g_after_block: a[0].as_u64().unwrap() as usize,
            d_after_block: a[1].as_u64().unwrap() as usize,
        });
        let config = ModelConfig {
            architecture,
            conditioning,
            num_classes: int("num_classes"),
            z_dim: int("z_dim"),
            shared_dim: 128,
            g_conv_dim: int("width"),
            d_conv_dim: int("width"),
            hyper_dim: int("hyper_dim"),
            nonlinear_embed: false,
            normalize_embed: true,
            g_spectral_norm: c["g_spectral_norm"].as_bool().unwrap(),
            d_spectral_norm: true,
            attention,
            leaky_relu: false,
            g_init: Scheme::N02,
            d_init: Scheme::N02,
            image_size: None,
            aux_cls_type: Default::default(),
            stylegan2: None,
        };
        config
            .check()
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
        let g = generator::build::<Flex>(&config, 0, &device);
        let d = discriminator::build::<Flex>(&config, 0, &device);
        for (network, ours, expected) in
            [("G", shapes(&g), &json["G"]), ("D", shapes(&d), &json["D"])]
        {
            let expected = theirs(expected);
            let missing: Vec<_> = expected.keys().filter(|k| !ours.contains_key(*k)).collect();
            let extra: Vec<_> = ours.keys().filter(|k| !expected.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{} {network}: missing {missing:?}, not theirs {extra:?}",
                case.display()
            );
            for (name, shape) in &expected {
                assert_eq!(&ours[name], shape, "{} {network}: {name}", case.display());
            }
        }
    }
}
