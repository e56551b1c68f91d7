//! `cargo bench -p gan --bench train [-- dcgan|biggan] [--iterations N] [--devices N]
//! [--penalty gp|dra|maxgp|r1] [--projection] [--latent-op]`: training iterations of
//! the paper's configurations at full width, batch 64, on synthetic 32×32 images:
//! SNDCGAN32 ContraGAN (1 D + 1 G step per iteration) and BigGAN32 ContraGAN (width 96,
//! 5 D + 1 G steps), with a gradient penalty on D (λ 10) if asked, or with LOGAN (the
//! seed's, in its loop without the 2C loss: projection conditioning then, which
//! `--projection` asks for alone; α 0.9, β 0.1, rate 0.8). Reports milliseconds per
//! iteration (the first iteration, a warm-up, left out) and the process's peak resident
//! memory.
//! Runs on `Device::Auto`: CUDA in builds with the `cuda` feature where a GPU answers,
//! data parallel over `--devices` of them (GPUs shared when there are fewer).
//!
//! Reference on the 2-core development machine (PyTorch 2.15 CPU, the authors'
//! models): BigGAN32 ContraGAN 23.9 s per iteration, SNDCGAN32 ContraGAN 0.62 s.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use data::synthetic::{self, Synthetic};
use data::{Packed, Split};
use gan::config::{AdvLoss, Architecture, Attention, Conditioning, Ema, LatentOpConfig};
use gan::train::{self, Setup, StepLog};
use gan::{ModelConfig, TrainConfig};
use kernels::Kernels;
use kernels::device::{Device, OnDevices};

fn dataset(dir: &Path) -> Arc<Packed> {
    let params = Synthetic {
        seed: 0,
        per_class: 64,
        size: 32,
        classes: 10,
        plain: false,
    };
    let path = dir.join("images.pack");
    data::pack(
        synthetic::read(&params, Split::Train),
        &path,
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .expect("pack synthetic images");
    Arc::new(Packed::open(&path).expect("open the pack"))
}

/// The paper's configurations (configs/Table1 at 67e0de0), contrastive conditioning.
fn config(name: &str, iterations: u64) -> (ModelConfig, TrainConfig) {
    let biggan = name == "biggan";
    let model = ModelConfig {
        architecture: if biggan {
            Architecture::Biggan32
        } else {
            Architecture::Dcgan32
        },
        conditioning: Conditioning::Contrastive,
        num_classes: 10,
        z_dim: if biggan { 80 } else { 128 },
        shared_dim: 128,
        g_conv_dim: if biggan { 96 } else { 64 },
        d_conv_dim: if biggan { 96 } else { 64 },
        hyper_dim: 512,
        nonlinear_embed: false,
        normalize_embed: true,
        g_spectral_norm: biggan,
        d_spectral_norm: true,
        attention: biggan.then_some(Attention {
            g_after_block: 2,
            d_after_block: 1,
        }),
        leaky_relu: false,
        g_init: Default::default(),
        d_init: Default::default(),
        image_size: None,
        aux_cls_type: Default::default(),
    };
    let train = TrainConfig {
        batch_size: 64,
        accumulation_steps: 1,
        total_steps: iterations,
        d_steps_per_iter: if biggan { 5 } else { 1 },
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
            decay: 0.9999,
            start: 20_000,
        }),
        flip: true,
        sync_bn: false,
        apply_diffaug: false,
        lecam: None,
        latent_op: None,
        consistency_reg: false,
        consistency_lambda: 10.0,
        make_positive_aug: false,
    };
    (model, train)
}

struct Run<'a, 'b>(&'a Setup<'b>);

impl OnDevices for Run<'_, '_> {
    type Output = Result<train::Trained, train::TrainError>;
    fn run<B: Kernels>(self, devices: Vec<B::Device>) -> Self::Output {
        train::run::<B, _>(self.0, devices)
    }
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    kernels::memory::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let iterations: u64 = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let devices: usize = args
        .iter()
        .position(|a| a == "--devices")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1);
    let penalty = args
        .iter()
        .position(|a| a == "--penalty")
        .map(|i| args.get(i + 1).map(String::as_str));
    let latent_op = args.iter().any(|a| a == "--latent-op");
    let projection = latent_op || args.iter().any(|a| a == "--projection");
    let gpus: Vec<u32> = (0..Device::visible_gpus().min(devices) as u32).collect();
    let mut names: Vec<&str> = ["dcgan", "biggan"]
        .into_iter()
        .filter(|n| args.iter().any(|a| a == n))
        .collect();
    if names.is_empty() {
        // The smaller first: peak memory only grows.
        names = vec!["dcgan", "biggan"];
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dataset(dir.path());
    for name in names {
        let (model, mut train) = config(name, iterations + 1);
        match penalty {
            None => {}
            Some(Some("gp")) => train.gradient_penalty = Some(10.0),
            Some(Some("dra")) => train.dra_lambda = Some(10.0),
            Some(Some("maxgp")) => train.maxgp_lambda = Some(10.0),
            Some(Some("r1")) => train.r1_lambda = Some(10.0),
            Some(other) => panic!("--penalty {other:?}: one of gp, dra, maxgp, r1"),
        }
        let mut model = model;
        if projection {
            model.conditioning = Conditioning::Projection;
        }
        if latent_op {
            train.latent_op = Some(LatentOpConfig {
                rate: 0.8,
                alpha: 0.9,
                beta: 0.1,
                norm_reg_weight: 0.0,
            });
        }
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        let steps = std::sync::Mutex::new(Vec::new());
        let progress = |log: &StepLog| {
            eprintln!(
                "  {name} iteration {}: {:.0} ms",
                log.step,
                1e3 * log.seconds
            );
            steps.lock().unwrap().push(log.seconds);
        };
        let cancel = AtomicBool::new(false);
        let setup = Setup {
            model: &model,
            train: &train,
            seed: 1,
            data: data.clone(),
            work: &work,
            checkpoint_every: 0,
            start: None,
            evaluation: None,
            cancel: &cancel,
            progress: &progress,
        };
        let device = Device::Auto.in_slot(&gpus);
        let (result, used) = device
            .run_shards(&gpus, devices, Run(&setup))
            .expect("a device");
        result.expect("training runs");
        let steps = steps.into_inner().unwrap();
        let timed = &steps[1..];
        let mean = timed.iter().sum::<f64>() / timed.len() as f64;
        let label = match name {
            "biggan" => "BigGAN32 ContraGAN, width 96, batch 64, 5 D + 1 G",
            _ => "SNDCGAN32 ContraGAN, batch 64, 1 D + 1 G",
        };
        let memory = peak_rss_mib()
            .map(|m| format!("{m:.0} MiB peak RSS (process)"))
            .unwrap_or_else(|| "peak memory unknown".into());
        let with = match penalty.flatten() {
            Some(p) => format!(" + {p} penalty"),
            None => String::new(),
        } + if projection { " (projection)" } else { "" }
            + if latent_op { " + LOGAN" } else { "" };
        println!(
            "{label}{with} on {used}: {:.0} ms per iteration (mean of {}), {memory}",
            1e3 * mean,
            timed.len()
        );
    }
}
