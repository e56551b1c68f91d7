//! The loop on a small synthetic set: resuming equals not stopping, FID during
//! training and the best generator survive interruptions, failures keep what they must.

use super::*;
use crate::config::{AdvLoss, Architecture, Attention, Conditioning, Ema};
use crate::{discriminator, generator};
use burn::backend::Flex;
use data::synthetic::Synthetic;
use kernels::device::OnBackend;
use metrics::extract::Extraction;
use std::path::PathBuf;

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

pub(crate) fn configs() -> (ModelConfig, TrainConfig) {
    let model = ModelConfig {
        architecture: Architecture::Biggan32,
        conditioning: Conditioning::Contrastive,
        num_classes: 4,
        z_dim: 20,
        shared_dim: 8,
        g_conv_dim: 8,
        d_conv_dim: 8,
        hyper_dim: 16,
        nonlinear_embed: false,
        normalize_embed: true,
        g_spectral_norm: true,
        d_spectral_norm: true,
        attention: Some(Attention {
            g_after_block: 2,
            d_after_block: 1,
        }),
        leaky_relu: false,
        g_init: Default::default(),
        d_init: Default::default(),
        image_size: None,
        aux_cls_type: Default::default(),
        stylegan2: None,
    };
    let train = TrainConfig {
        batch_size: 4,
        accumulation_steps: 2,
        total_steps: 4,
        d_steps_per_iter: 2,
        g_steps_per_iter: 1,
        g_lr: 2e-4,
        d_lr: 2e-4,
        beta1: 0.5,
        beta2: 0.999,
        adam_eps: 1e-8,
        adv_loss: AdvLoss::Hinge,
        contrastive_lambda: 1.0,
        temperature: 1.0,
        positives_in_numerator: true,
        m_p: 0.98,
        weight_clipping: None,
        gradient_penalty: None,
        dra_lambda: None,
        maxgp_lambda: None,
        r1_lambda: None,
        ema: Some(Ema {
            decay: 0.9,
            start: 2,
        }),
        flip: true,
        sync_bn: false,
        apa: None,
        ada: None,
        stylegan2: None,
        apply_diffaug: false,
        lecam: None,
        latent_op: None,
        consistency_reg: false,
        consistency_lambda: 10.0,
        make_positive_aug: false,
    };
    (model, train)
}

/// The folders `names` made under `root`.
fn folders<const N: usize>(root: &Path, names: [&str; N]) -> [PathBuf; N] {
    names.map(|name| {
        let path = root.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    })
}

fn train(
    data: &Arc<Packed>,
    work: &Path,
    stop_at: Option<u64>,
    start: Option<Start>,
) -> Result<Trained, TrainError> {
    let (model, config) = configs();
    train_evaluated(&model, &config, data, work, stop_at, start, 1)
}

/// A run of `model` and `config` with FID every 2 iterations (see [`train`]), the
/// losses read every `log_every` iterations.
fn train_evaluated(
    model: &ModelConfig,
    config: &TrainConfig,
    data: &Arc<Packed>,
    work: &Path,
    stop_at: Option<u64>,
    start: Option<Start>,
    log_every: u64,
) -> Result<Trained, TrainError> {
    let cancel = AtomicBool::new(false);
    let progress = |log: &StepLog| {
        assert!(log.d_loss.is_finite() && log.g_loss.is_finite());
        if Some(log.step) == stop_at {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    // FID every 2 iterations in the features of an untrained classifier.
    let classifier = ModelConfig {
        conditioning: Conditioning::Acgan,
        ..model.clone()
    };
    let network = crate::classifier::Trained {
        net: discriminator::build::<Flex>(&classifier, 5, &Default::default()).to_snapshot(),
        model: classifier,
    };
    let reference = Extraction {
        network: &network,
        images: data.as_ref(),
        batch: 8,
        keep: false,
        progress: &|_, _| {},
        cancel: &AtomicBool::new(false),
    }
    .run::<Flex>(Default::default())
    .unwrap()
    .stats
    .unwrap();
    let setup = Setup {
        model,
        train: config,
        seed: 11,
        data: data.clone(),
        work,
        checkpoint_every: 3,
        start,
        evaluation: Some(Evaluation {
            every: 2,
            count: 6,
            network: &network,
            reference: &reference,
            report: &|_| {},
        }),
        cancel: &cancel,
        progress: &progress,
        log_every,
    };
    run::<Flex, _>(&setup, vec![Default::default()])
}

#[test]
fn interrupted_and_resumed_training_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [whole, parts] = folders(dir.path(), ["whole", "parts"]);

    let a = train(&data, &whole, None, None).unwrap();
    assert_eq!(a.last.as_ref().unwrap().step, 4);
    let ema = a.g_ema.as_ref().unwrap();
    assert_ne!(
        ema.tensors["linear0.weight_orig"],
        a.g.tensors["linear0.weight_orig"]
    );

    let stopped = train(&data, &parts, Some(2), None).map(|_| ()).unwrap_err();
    assert!(
        matches!(stopped, TrainError::Cancelled { step: 2 }),
        "{stopped}"
    );
    let b = train(&data, &parts, None, None).unwrap();
    assert_eq!(b.resumed_from, Some(2));
    assert!(a.g == b.g, "G differs after resuming");
    assert!(a.d == b.d, "D differs after resuming");
    assert!(a.g_ema == b.g_ema, "EMA differs after resuming");
    let log = std::fs::read_to_string(parts.join(LOSSES)).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<StepLog>(l).unwrap().step)
        .collect();
    assert_eq!(steps, [1, 2, 3, 4]);

    // The evaluation interrupted at step 2 was redone on resuming: same scores, and
    // the best generator is the one of the lowest.
    let scores = |dir: &Path| std::fs::read_to_string(dir.join(SCORES)).unwrap();
    assert_eq!(scores(&whole), scores(&parts));
    let logged: Vec<Scored> = scores(&whole)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logged.iter().map(|s| s.step).collect::<Vec<_>>(), [2, 4]);
    let lowest = logged
        .iter()
        .fold(logged[0], |b, &s| if s.fid < b.fid { s } else { b });
    let (best_a, snapshot_a) = a.best.unwrap();
    let (best_b, snapshot_b) = b.best.unwrap();
    assert_eq!((best_a, best_b), (lowest, lowest));
    assert!(snapshot_a == snapshot_b);
    if lowest.step == 4 {
        assert!(&snapshot_a == a.g_ema.as_ref().unwrap());
    }
    let kept: Vec<_> = std::fs::read_dir(parts.join("best")).unwrap().collect();
    assert_eq!(kept.len(), 1, "only the best generator is kept");
}

/// Read after every iteration, or later (before the evaluation at step 2, with its
/// checkpoint): the same error, and nothing saved or logged of the failed iterations.
#[test]
fn a_non_finite_loss_stops_training_and_names_the_step() {
    let (model, config) = configs();
    let g = generator::build::<Flex>(&model, 1, &Default::default()).to_snapshot();
    let mut d = discriminator::build::<Flex>(&model, 2, &Default::default()).to_snapshot();
    // The embedding head: ReLUs would swallow a NaN in the trunk or the hinge.
    d.tensors.get_mut("linear5.bias").unwrap().data[0] = f32::NAN;
    for log_every in [1, LOG_EVERY] {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let start = Start {
            g: g.clone(),
            d: d.clone(),
            g_ema: None,
        };
        let err = train_evaluated(
            &model,
            &config,
            &data,
            dir.path(),
            None,
            Some(start),
            log_every,
        )
        .map(|_| ())
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("step 0: the discriminator loss is NaN"),
            "log_every {log_every}: {text}"
        );
        let saved = latest_checkpoint(&checkpoint_dir(dir.path())).unwrap();
        assert_eq!(saved, None, "log_every {log_every}");
        let logged = std::fs::read_to_string(dir.path().join(LOSSES)).unwrap();
        assert_eq!(logged, "", "log_every {log_every}");
    }
}

/// Trains the test configuration without evaluation on `devices` shards (all on the
/// CPU), stopping after `stop_at` if given.
fn train_sharded(
    data: &Arc<Packed>,
    work: &Path,
    devices: usize,
    sync_bn: bool,
    stop_at: Option<u64>,
) -> Result<Trained, TrainError> {
    train_with(data, work, devices, stop_at, &|config| {
        config.sync_bn = sync_bn
    })
}

/// As [`train_sharded`], with the configuration changed by `change`.
fn train_with(
    data: &Arc<Packed>,
    work: &Path,
    devices: usize,
    stop_at: Option<u64>,
    change: &dyn Fn(&mut TrainConfig),
) -> Result<Trained, TrainError> {
    train_model_with(&configs().0, data, work, devices, stop_at, change)
}

/// As [`train_with`], for `model`.
fn train_model_with(
    model: &ModelConfig,
    data: &Arc<Packed>,
    work: &Path,
    devices: usize,
    stop_at: Option<u64>,
    change: &dyn Fn(&mut TrainConfig),
) -> Result<Trained, TrainError> {
    let (_, mut config) = configs();
    change(&mut config);
    let cancel = AtomicBool::new(false);
    let progress = |log: &StepLog| {
        if Some(log.step) == stop_at {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let setup = Setup {
        model,
        train: &config,
        seed: 11,
        data: data.clone(),
        work,
        checkpoint_every: 0,
        start: None,
        evaluation: None::<Evaluation<'_, crate::classifier::Trained>>,
        cancel: &cancel,
        progress: &progress,
        log_every: 1,
    };
    run::<Flex, _>(&setup, vec![Default::default(); devices])
}

/// Each tensor's largest difference between two snapshots, and the tensor's largest
/// value (at least 1).
fn differences(a: &Snapshot, b: &Snapshot) -> Vec<(String, f32, f32)> {
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    a.tensors
        .iter()
        .map(|(name, x)| {
            let y = &b.tensors[name];
            let scale = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
            let diff = x
                .data
                .iter()
                .zip(&y.data)
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            (name.clone(), diff, scale)
        })
        .collect()
}

/// The largest difference of any tensor, relative to its largest value.
fn largest_difference(a: &Snapshot, b: &Snapshot) -> f32 {
    differences(a, b)
        .into_iter()
        .map(|(_, diff, scale)| diff / scale)
        .fold(0.0, f32::max)
}

fn losses(dir: &Path) -> Vec<StepLog> {
    std::fs::read_to_string(dir.join(LOSSES))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn two_devices_with_synchronized_batch_norm_train_as_one_device_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [one, two] = folders(dir.path(), ["one", "two"]);
    let a = train_sharded(&data, &one, 1, true, None).unwrap();
    let b = train_sharded(&data, &two, 2, true, None).unwrap();
    assert_trained_alike(&a, &b, &one, &two);
}

/// Two runs of the test configuration whose batches were split differently, in `one`
/// and `two`.
fn assert_trained_alike(a: &Trained, b: &Trained, one: &Path, two: &Path) {
    // The same batches, z and labels, the loss on the whole batch (2C included), one
    // optimizer: only the order of sums differs (BatchNorm statistics summed over the
    // shards, each parameter's gradient summed over its replicas).
    for (x, y) in losses(one).iter().zip(&losses(two)) {
        assert!(
            (x.d_loss - y.d_loss).abs() <= 1e-5 * x.d_loss.abs().max(1.0),
            "{x:?} {y:?}"
        );
        assert!(
            (x.g_loss - y.g_loss).abs() <= 1e-5 * x.g_loss.abs().max(1.0),
            "{x:?} {y:?}"
        );
    }
    // Weights agree to 1e-4 of each tensor's largest value, but for the biases of
    // convolutions that feed a BatchNorm: their gradient is zero in exact arithmetic,
    // so Adam turns rounding noise into steps of up to lr each way.
    let (_, config) = configs();
    let noise = 2.0 * config.total_steps as f32 * config.g_lr.max(config.d_lr) as f32;
    let ema = (a.g_ema.as_ref().unwrap(), b.g_ema.as_ref().unwrap());
    for (network, x, y) in [("G", &a.g, &b.g), ("D", &a.d, &b.d), ("EMA", ema.0, ema.1)] {
        for (name, diff, scale) in differences(x, y) {
            let bound = if name.ends_with(".bias") && diff > 1e-4 * scale {
                noise
            } else {
                1e-4 * scale
            };
            assert!(diff <= bound, "{network} `{name}` differs by {diff}");
        }
    }
}

#[test]
fn gradient_penalties_train_on_two_devices_as_on_one_and_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [one, two, plain] = folders(dir.path(), ["one", "two", "plain"]);
    // DiffAugment too: the penalties' points are made of the images before it.
    let methods = |config: &mut TrainConfig| {
        config.sync_bn = true;
        config.apply_diffaug = true;
    };
    let penalized = |config: &mut TrainConfig| {
        methods(config);
        config.gradient_penalty = Some(1.0);
        config.dra_lambda = Some(0.5);
    };
    let a = train_with(&data, &one, 1, None, &penalized).unwrap();
    let b = train_with(&data, &two, 2, None, &penalized).unwrap();
    // The shards' penalties, averaged, are the whole batch's: both are means over it.
    assert_trained_alike(&a, &b, &one, &two);
    let plain = train_with(&data, &plain, 1, None, &methods).unwrap();
    assert!(plain.d != a.d, "the penalties changed nothing");
    // R1 replays each shard's pass over its real images.
    let [one, two] = folders(dir.path(), ["r1_one", "r1_two"]);
    let r1 = |config: &mut TrainConfig| {
        config.sync_bn = true;
        config.r1_lambda = Some(0.5);
    };
    let a = train_with(&data, &one, 1, None, &r1).unwrap();
    let b = train_with(&data, &two, 2, None, &r1).unwrap();
    assert_trained_alike(&a, &b, &one, &two);
}

#[test]
fn latent_optimization_trains_on_two_devices_as_on_one_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [one, two, parts, plain, scored] =
        folders(dir.path(), ["one", "two", "parts", "plain", "scored"]);
    // The seed's LOGAN runs in its loop for GANs without the 2C loss.
    let model = ModelConfig {
        conditioning: Conditioning::Projection,
        ..configs().0
    };
    let synced = |config: &mut TrainConfig| config.sync_bn = true;
    let logan = |config: &mut TrainConfig| {
        synced(config);
        config.latent_op = Some(crate::config::LatentOpConfig {
            rate: 0.8,
            alpha: 0.9,
            beta: 0.1,
            norm_reg_weight: 0.1,
        });
    };
    let a = train_model_with(&model, &data, &one, 1, None, &logan).unwrap();
    // z moves for the whole batch at once (eval mode: each sample on its own), then the
    // batch is split; the move's gradient flows back through every shard.
    let b = train_model_with(&model, &data, &two, 2, None, &logan).unwrap();
    assert_trained_alike(&a, &b, &one, &two);
    train_model_with(&model, &data, &parts, 1, Some(2), &logan)
        .map(|_| ())
        .unwrap_err();
    let c = train_model_with(&model, &data, &parts, 1, None, &logan).unwrap();
    assert_eq!(c.resumed_from, Some(2));
    assert!(a.g == c.g && a.d == c.d, "resuming changed the run");
    let plain = train_model_with(&model, &data, &plain, 1, None, &synced).unwrap();
    assert!(plain.g != a.g && plain.d != a.d, "LOGAN changed nothing");
    // Evaluations move z with D as it is; D of the best one is kept beside its G.
    let (_, mut config) = configs();
    logan(&mut config);
    let evaluated = train_evaluated(&model, &config, &data, &scored, None, None, 1).unwrap();
    let (best, _) = evaluated.best.as_ref().expect("a best evaluation");
    let best_d = evaluated.best_d.as_ref().expect("D of the best evaluation");
    assert_eq!(best_d.tensors.len(), evaluated.d.tensors.len());
    if best.step == config.total_steps {
        assert!(
            *best_d == evaluated.d,
            "D of the last evaluation is the final D"
        );
    }
}

#[test]
fn per_device_batch_norm_is_not_one_devices_and_a_two_device_run_resumes_on_any_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [whole, single, parts, moved] = folders(dir.path(), ["whole", "single", "parts", "moved"]);
    let a = train_sharded(&data, &whole, 2, false, None).unwrap();
    // Each shard normalized with its own statistics: not what one device computes.
    let one = train_sharded(&data, &single, 1, false, None).unwrap();
    assert!(
        largest_difference(&a.g, &one.g) > 1e-3,
        "G trained as on one device"
    );

    // Interrupted and resumed on two devices: bit for bit the uninterrupted run.
    let stopped = train_sharded(&data, &parts, 2, false, Some(2))
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(stopped, TrainError::Cancelled { step: 2 }),
        "{stopped}"
    );
    let b = train_sharded(&data, &parts, 2, false, None).unwrap();
    assert_eq!(b.resumed_from, Some(2));
    assert!(
        a.g == b.g && a.d == b.d && a.g_ema == b.g_ema,
        "resuming changed the run"
    );

    // A checkpoint is a one-device run's: it resumes on one device, then trains as
    // one device does from there.
    train_sharded(&data, &moved, 2, false, Some(2))
        .map(|_| ())
        .unwrap_err();
    let c = train_sharded(&data, &moved, 1, false, None).unwrap();
    assert_eq!(c.resumed_from, Some(2));
    let values = |dir: &Path| -> Vec<(u64, f64, f64)> {
        losses(dir)
            .iter()
            .map(|l| (l.step, l.d_loss, l.g_loss))
            .collect()
    };
    assert_eq!(values(&moved)[..2], values(&whole)[..2]);
    assert_eq!(values(&moved).len(), 4);
}

#[test]
fn stateful_and_augmenting_terms_resume_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [whole, parts, plain] = folders(dir.path(), ["whole", "parts", "plain"]);
    // LeCam's averages start before step 2 and its penalty applies from step 2 on.
    let methods = |config: &mut TrainConfig| {
        config.apply_diffaug = true;
        config.lecam = Some(crate::config::LeCamConfig {
            lambda: 0.3,
            ema_start_iter: 1,
            ema_decay: 0.9,
        });
    };
    let a = train_with(&data, &whole, 1, None, &methods).unwrap();
    train_with(&data, &parts, 1, Some(2), &methods)
        .map(|_| ())
        .unwrap_err();
    let b = train_with(&data, &parts, 1, None, &methods).unwrap();
    assert_eq!(b.resumed_from, Some(2));
    assert!(a.g == b.g && a.d == b.d, "resuming changed the run");
    let plain = train_sharded(&data, &plain, 1, false, None).unwrap();
    assert!(plain.d != a.d, "the terms changed nothing");
}

/// A StyleGAN2 at small widths with everything its loop adds: style mixing, the D
/// step's update of the average w, lazy R1 every 2 D steps through ADA, path length
/// regularization every 2 G steps (at steps 0 and 2: a run resumed at 2 takes the
/// running mean from its checkpoint), ADA's `bgc` and APA with one p (from 0.5, moving
/// every iteration by up to 8/4), the EMA with its ramp-up, Adam's lazy rescaling.
fn stylegan2() -> (ModelConfig, impl Fn(&mut TrainConfig)) {
    let (base, _) = configs();
    let model = ModelConfig {
        architecture: Architecture::Stylegan2,
        conditioning: Conditioning::Projection,
        shared_dim: 128,
        g_conv_dim: crate::config::DEFAULT_CONV_DIM,
        d_conv_dim: crate::config::DEFAULT_CONV_DIM,
        g_spectral_norm: false,
        d_spectral_norm: false,
        attention: None,
        stylegan2: Some(Box::new(crate::config::Stylegan2Model {
            resolution: 32,
            w_dim: 8,
            mapping_network: 2,
            channel_base: 64,
            channel_max: 8,
            d_architecture: crate::config::DBlocks::Orig,
            d_epilogue_mbstd_group_size: 2,
            style_mixing_p: 0.5,
        })),
        ..base
    };
    model.check().unwrap();
    let change = |config: &mut TrainConfig| {
        config.adv_loss = AdvLoss::Logistic;
        let p = crate::config::AdaptiveP {
            initial_p: 0.5,
            target: 0.6,
            kimg: 0.004,
            interval: 1,
        };
        config.apa = Some(p);
        config.ada = Some(crate::config::Ada {
            pipeline: crate::config::AdaPipeline::Bgc,
            p,
        });
        config.ema = None;
        config.r1_lambda = Some(0.5);
        config.beta1 = 0.0;
        config.beta2 = 0.99;
        config.stylegan2 = Some(crate::config::Stylegan2Training {
            g_reg_interval: 2,
            d_reg_interval: 2,
            g_ema_kimg: Some(0.01),
            g_ema_rampup: Some(0.05),
            pl_weight: Some(2.0),
        });
    };
    (model, change)
}

/// (Two devices train, but not as one does: D's minibatch groups are drawn within each
/// device's share of the batch, as under the reference's DistributedDataParallel.)
#[test]
fn stylegan2_trains_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let [whole, parts, two, plain] = folders(dir.path(), ["whole", "parts", "two", "plain"]);
    let (model, change) = stylegan2();
    let mut config = configs().1;
    change(&mut config);
    config.check_with(&model).unwrap();
    let a = train_model_with(&model, &data, &whole, 1, None, &change).unwrap();
    train_model_with(&model, &data, &parts, 1, Some(2), &change)
        .map(|_| ())
        .unwrap_err();
    let b = train_model_with(&model, &data, &parts, 1, None, &change).unwrap();
    assert_eq!(b.resumed_from, Some(2));
    assert!(
        a.g == b.g && a.d == b.d && a.g_ema == b.g_ema,
        "resuming changed the run"
    );
    let info = std::fs::read_to_string(whole.join("checkpoints/4/state.json")).unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let p = info["adaptive_p"][0]
        .as_f64()
        .expect("ADA's and APA's p in the checkpoint");
    assert!(p != 0.5, "the p of ADA and APA never moved");
    let logged: Vec<Option<f64>> = losses(&whole).iter().map(|l| l.aug_p).collect();
    assert!(
        logged.iter().all(Option::is_some),
        "ADA's and APA's p in every log line: {logged:?}"
    );
    let w_avg = &a.g.tensors["mapping.w_avg"].data;
    assert!(w_avg.iter().any(|v| *v != 0.0), "the average w never moved");
    let ema = a.g_ema.as_ref().expect("StyleGAN2's EMA");
    assert!(*ema != a.g, "the EMA is G itself");
    assert_eq!(
        ema.tensors["mapping.w_avg"], a.g.tensors["mapping.w_avg"],
        "buffers are copied"
    );

    let c = train_model_with(&model, &data, &two, 2, None, &change).unwrap();
    assert!(
        losses(&two)
            .iter()
            .all(|l| l.d_loss.is_finite() && l.g_loss.is_finite())
    );
    assert_eq!(
        c.g.tensors.keys().collect::<Vec<_>>(),
        a.g.tensors.keys().collect::<Vec<_>>()
    );

    let without_r1 = |config: &mut TrainConfig| {
        change(config);
        config.r1_lambda = None;
    };
    let d = train_model_with(&model, &data, &plain, 1, None, &without_r1).unwrap();
    assert!(d.d != a.d, "lazy R1 changed nothing");
    let without_pl = |config: &mut TrainConfig| {
        change(config);
        config.stylegan2.as_mut().unwrap().pl_weight = None;
    };
    let [no_pl] = folders(dir.path(), ["no_pl"]);
    let e = train_model_with(&model, &data, &no_pl, 1, None, &without_pl).unwrap();
    assert!(e.g != a.g, "path length regularization changed nothing");
    let without_ada = |config: &mut TrainConfig| {
        change(config);
        config.ada = None;
    };
    let [no_ada] = folders(dir.path(), ["no_ada"]);
    let f = train_model_with(&model, &data, &no_ada, 1, None, &without_ada).unwrap();
    assert!(f.d != a.d && f.g != a.g, "ADA changed nothing");
}
