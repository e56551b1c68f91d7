//! Training reads nothing back from the device in the steady state but the losses, in
//! one transfer every `log_every` iterations: on a GPU every read waits for the work
//! queued before it. Counted on the counting backend (burn-flex behind a router that
//! counts), for every path the training benchmark measures. A new read in a step
//! fails here, naming its callers.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use data::Packed;
use data::synthetic::Synthetic;
use gan::train::{self, Setup, StepLog};
use gan::{ModelConfig, TrainConfig};
use kernels::counted::{self, Counted};
use metrics::backbone::Pretrained;

/// Iterations between reads of the losses in these runs.
const LOG_EVERY: u64 = 2;
/// Iterations counted, after the first read (setting up reads what it must).
const COUNTED: u64 = 6;

/// The rows of the training benchmark, small: (what, model, D steps per iteration, the
/// rest of the training, devices).
const ROWS: &[(&str, &str, usize, &str, usize)] = &[
    ("SNDCGAN32 ContraGAN", DCGAN, 1, "", 1),
    ("SNDCGAN32 projection", DCGAN_PROJECTION, 1, "", 1),
    ("SNDCGAN32 ACGAN", DCGAN_ACGAN, 1, "", 1),
    ("SNDCGAN32 ContraGAN on 2 devices", DCGAN, 1, "", 2),
    ("ResGAN32 ContraGAN", RESGAN, 2, "", 1),
    (
        "BigGAN32 ContraGAN, accumulation",
        BIGGAN,
        2,
        "accumulation_steps: 2,",
        1,
    ),
    ("+ R1", BIGGAN, 1, "r1_lambda: Some(10.0),", 1),
    ("+ WGAN-GP", BIGGAN, 1, "gradient_penalty: Some(10.0),", 1),
    (
        "+ LOGAN",
        BIGGAN_PROJECTION,
        1,
        "latent_op: Some((rate: 0.8, alpha: 0.9, beta: 0.1)),",
        1,
    ),
    ("+ DiffAugment", BIGGAN, 1, "apply_diffaug: true,", 1),
    // p moves (a read of D's signs) every `interval` iterations, beyond those counted.
    (
        "+ ADA",
        BIGGAN,
        1,
        "ada: Some((pipeline: Bgc, p: (initial_p: 0.5, target: 0.6, kimg: 500.0, \
         interval: 100))),",
        1,
    ),
    ("+ CR", BIGGAN, 1, "consistency_reg: true,", 1),
    (
        "+ LeCam",
        BIGGAN,
        1,
        "lecam: Some((lambda: 0.3, ema_start_iter: 2, ema_decay: 0.99)),",
        1,
    ),
];

const DCGAN: &str = "(architecture: Dcgan32, conditioning: Contrastive, num_classes: 4, \
    z_dim: 16, hyper_dim: 16, g_spectral_norm: false, \
    d_spectral_norm: true)";
const DCGAN_PROJECTION: &str = "(architecture: Dcgan32, conditioning: Projection, \
    num_classes: 4, z_dim: 16, g_spectral_norm: false, d_spectral_norm: true)";
const DCGAN_ACGAN: &str = "(architecture: Dcgan32, conditioning: Acgan, num_classes: 4, \
    z_dim: 16, g_spectral_norm: false, d_spectral_norm: true)";
const RESGAN: &str = "(architecture: Resgan32, conditioning: Contrastive, num_classes: 4, \
    z_dim: 16, g_conv_dim: 8, d_conv_dim: 8, hyper_dim: 16, g_spectral_norm: false, \
    d_spectral_norm: true)";
const BIGGAN: &str = "(architecture: Biggan32, conditioning: Contrastive, num_classes: 4, \
    z_dim: 20, shared_dim: 8, g_conv_dim: 8, d_conv_dim: 8, hyper_dim: 16, \
    g_spectral_norm: true, d_spectral_norm: true, \
    attention: Some((g_after_block: 2, d_after_block: 1)))";
const BIGGAN_PROJECTION: &str = "(architecture: Biggan32, conditioning: Projection, \
    num_classes: 4, z_dim: 20, shared_dim: 8, g_conv_dim: 8, d_conv_dim: 8, \
    g_spectral_norm: true, d_spectral_norm: true)";

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> T {
    let mut sources = ronspan::Sources::default();
    let id = sources.add(what, text);
    let value = ronspan::parse(id, text).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    ronspan::from_value(&value).unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

fn configs(model: &str, d_steps: usize, extra: &str) -> (ModelConfig, TrainConfig) {
    let train = format!(
        "(batch_size: 4, total_steps: {}, d_steps_per_iter: {d_steps}, g_lr: 2e-4, d_lr: 2e-4, \
         beta1: 0.5, beta2: 0.999, adv_loss: Hinge, ema: Some((decay: 0.9, start: 2)), {extra})",
        LOG_EVERY + COUNTED
    );
    let (model, train): (ModelConfig, TrainConfig) =
        (parse("model", model), parse("train", &train));
    model.check().expect("a valid model");
    train.check().expect("a valid training");
    (model, train)
}

fn dataset(dir: &Path) -> Arc<Packed> {
    let params = Synthetic {
        seed: 3,
        per_class: 4,
        size: 32,
        classes: 4,
        plain: false,
    };
    data::testutil::packed_synthetic(&params, &dir.join("images.pack"))
}

/// The counts when iteration `LOG_EVERY`'s losses were read, and when the last's were.
fn counts_between_reads(
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Arc<Packed>,
    work: &Path,
    devices: usize,
) -> (counted::Counts, counted::Counts) {
    let seen = Mutex::new(Vec::new());
    let progress = |log: &StepLog| {
        if log.step == LOG_EVERY || log.step == LOG_EVERY + COUNTED {
            seen.lock().unwrap().push(counted::counts());
        }
    };
    let cancel = AtomicBool::new(false);
    let setup: Setup<Pretrained> = Setup {
        model,
        train,
        seed: 5,
        data: data.clone(),
        work,
        checkpoint_every: 0,
        start: None,
        evaluation: None,
        cancel: &cancel,
        progress: &progress,
        log_every: LOG_EVERY,
    };
    counted::reset();
    let devices = vec![Default::default(); devices];
    train::run::<Counted, Pretrained>(&setup, devices).expect("training runs");
    let mut seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2, "progress reached both iterations");
    let last = seen.pop().unwrap();
    (seen.pop().unwrap(), last)
}

#[test]
fn a_training_step_reads_nothing_but_the_losses_once_per_log_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    counted::trace_reads(true);
    let mut failures = Vec::new();
    for (k, &(what, model, d_steps, extra, devices)) in ROWS.iter().enumerate() {
        let (model, train) = configs(model, d_steps, extra);
        let work = dir.path().join(k.to_string());
        std::fs::create_dir_all(&work).unwrap();
        let (first, last) = counts_between_reads(&model, &train, &data, &work, devices);
        let reads = last.reads - first.reads;
        let expected = COUNTED / LOG_EVERY;
        let operations = (last.operations - first.operations) / COUNTED;
        eprintln!("{what}: {reads} reads in {COUNTED} iterations, {operations} operations each");
        if reads != expected {
            let sites = &last.read_sites[first.read_sites.len()..];
            failures.push(format!(
                "{what}: {reads} reads in {COUNTED} iterations, not {expected} (the losses \
                 every {LOG_EVERY}); read from:\n  {}",
                sites.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
