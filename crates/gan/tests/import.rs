//! The authors' zip-format checkpoints import name for name: a generator built here,
//! written as `torch.save` writes a state dict, reads back to the same tensors.

use burn::backend::Flex;
use gan::ModelConfig;
use gan::import::{Network, import};

/// A small projection BigGAN with self-attention: every kind of tensor the
/// importer maps (convolutions, linear maps, embeddings, BatchNorm buffers, SN vectors).
const MODEL: &str = "(architecture: Biggan32, conditioning: Projection, num_classes: 3, \
    z_dim: 20, shared_dim: 8, g_conv_dim: 4, d_conv_dim: 4, g_spectral_norm: true, \
    d_spectral_norm: true, attention: Some((g_after_block: 1, d_after_block: 1)))";

#[test]
fn zip_format_state_dicts_import_name_for_name() {
    let mut sources = ronspan::Sources::default();
    let id = sources.add("model.ron", MODEL);
    let model: ModelConfig = ronspan::from_value(&ronspan::parse(id, MODEL).unwrap()).unwrap();
    let built = gan::generator::build::<Flex>(&model, 7, &Default::default()).to_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("G.pth");
    let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = built
        .tensors
        .iter()
        .map(|(name, t)| (name.as_str(), t.shape.clone(), t.data.clone()))
        .collect();
    data::testutil::save_state_dict(&file, &tensors);
    let imported = import::<Flex>(&file, Network::Generator, &model, &Default::default())
        .unwrap()
        .tensors
        .to_snapshot();
    assert_eq!(imported.tensors, built.tensors);
}

/// The authors' BigGAN generators hold the class embedding `shared.weight` even when
/// built unconditional, where it is never used: the import leaves it out and says so. A
/// network the reference never gives such a tensor (a ResGAN) still refuses it.
#[test]
fn the_unused_embedding_of_an_unconditional_biggan_generator_is_left_out() {
    let cases = [("Biggan32", Some(())), ("Resgan32", None)];
    for (architecture, left_out) in cases {
        let text = format!(
            "(architecture: {architecture}, conditioning: None, num_classes: 3, z_dim: 20, \
             g_conv_dim: 4, d_conv_dim: 4, g_spectral_norm: true, d_spectral_norm: true)"
        );
        let mut sources = ronspan::Sources::default();
        let id = sources.add("model.ron", &text);
        let model: ModelConfig = ronspan::from_value(&ronspan::parse(id, &text).unwrap()).unwrap();
        let built = gan::generator::build::<Flex>(&model, 7, &Default::default()).to_snapshot();
        assert!(
            !built.tensors.contains_key("shared.weight"),
            "{architecture}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("G.pth");
        let mut tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = built
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.shape.clone(), t.data.clone()))
            .collect();
        tensors.push(("shared.weight", vec![3, 128], vec![0.25; 3 * 128]));
        data::testutil::save_state_dict(&file, &tensors);
        let imported = import::<Flex>(&file, Network::Generator, &model, &Default::default());
        match (left_out, imported) {
            (Some(_), Ok(imported)) => {
                assert_eq!(imported.ignored, [("shared.weight".to_string(), 3 * 128)]);
                assert_eq!(imported.tensors.to_snapshot().tensors, built.tensors);
            }
            (None, Err(e)) => assert!(
                e.to_string().contains(
                    "the checkpoint has tensors this Generator configuration lacks: `shared.weight`"
                ),
                "{architecture}: {e}"
            ),
            (expected, got) => panic!(
                "{architecture}: expected {expected:?}, got {:?}",
                got.map(|i| i.ignored).map_err(|e| e.to_string())
            ),
        }
    }
}
