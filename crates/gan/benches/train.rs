//! `cargo bench -p gan --bench train [-- ARCH…] [--cond contra|proj|ac] [--width N]
//! [--d-steps N] [--iterations N] [--devices N] [--penalty gp|dra|maxgp|r1]
//! [--latent-op] [--diffaug] [--ada] [--cr] [--batch N] [--count]`: training iterations of the
//! paper's configurations at batch 64 (or `--batch`) on synthetic images, ARCH among
//! dcgan32 (SNDCGAN, 1 D + 1 G step per iteration), resgan32 (2 D + 1 G), biggan32
//! (width 96, 5 D + 1 G) and biggan64 (width 80, 1 D + 1 G; `--width 32` for the
//! issue's row), with the widths, D steps and
//! class counts of the shared reference benchmark (`../shared/bench/ref_train_bench.py`,
//! whose arguments these mirror), so that both sides of a ratio run the same
//! iteration. Conditioning is ContraGAN's 2C loss unless `--cond` says projection or
//! ACGAN; a gradient penalty on D (λ 10), LOGAN (the seed's, α 0.9, β 0.1, rate 0.8:
//! projection conditioning, its loop has no 2C loss), DiffAugment, ADA (`bgc` at a
//! fixed p of 0.6) or consistency regularization are added if asked. Reports milliseconds per iteration (the first
//! iteration, a warm-up, left out) and the process's peak resident memory. `dcgan`
//! and `biggan` name dcgan32 and biggan32, the defaults.
//! Runs on `Device::Auto`: CUDA in builds with the `cuda` feature where a GPU answers,
//! data parallel over `--devices` of them (GPUs shared when there are fewer).
//!
//! `--count`: runs on the counting backend instead (burn-flex behind a router that
//! counts, with burn's operations where the CPU has kernels of its own, as on CUDA)
//! and reports, per iteration after the first, the operations launched (those that
//! only reshape, transpose or broadcast apart), the tensors read back to the host and
//! written from it, and the commonest operations: what the GPU path pays for. Set
//! beside PyTorch's aten operations per iteration (`tools/bench/torch_profile.py`).
//!
//! `--wgpu` and `--wgpu-unfused` (builds with the `wgpu` feature): runs on burn's wgpu
//! backend, with and without fusion, and reports the kernels launched per iteration
//! as CubeCL logs them: the kernels CUDA would run (`--kernels` counts them on CUDA). On a machine without a GPU, Mesa's
//! software Vulkan driver runs them (slowly); `benches/wgpu/check.sh` runs the rows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use data::Packed;
use data::synthetic::Synthetic;
use gan::config::{
    Ada, AdaPipeline, AdaptiveP, AdvLoss, Architecture, Attention, Conditioning, DBlocks, Ema,
    LatentOpConfig, Stylegan2Model, Stylegan2Training,
};
use gan::train::{self, Setup, StepLog};
use gan::{ModelConfig, TrainConfig};
use kernels::Kernels;
use kernels::counted::{self, Counted, Counts};
use kernels::device::{Device, OnDevices};

/// What one row of the benchmark trains.
struct Row {
    arch: Architecture,
    conditioning: Conditioning,
    width: usize,
    d_steps: usize,
    penalty: Option<String>,
    latent_op: bool,
    diffaug: bool,
    ada: bool,
    consistency: bool,
    batch: usize,
}

impl Row {
    fn size(&self) -> u32 {
        if self.arch == Architecture::Biggan64 {
            64
        } else {
            32
        }
    }

    fn label(&self) -> String {
        let arch = match self.arch {
            Architecture::Dcgan32 => "SNDCGAN32".to_string(),
            Architecture::Resgan32 => "ResGAN32".to_string(),
            Architecture::Biggan64 => format!("BigGAN64 width {}", self.width),
            Architecture::Biggan32 => format!("BigGAN32 width {}", self.width),
            Architecture::Stylegan2 => format!("StyleGAN2 channel_max {}", self.width),
            other => format!("{other:?}"),
        };
        let conditioning = match self.conditioning {
            Conditioning::Acgan => "ACGAN",
            Conditioning::Projection => "projection",
            _ => "ContraGAN",
        };
        let mut label = format!(
            "{arch} {conditioning}, batch {}, {} D + 1 G",
            self.batch, self.d_steps
        );
        let penalty = self.penalty.as_deref().map(|p| match p {
            "gp" => "WGAN-GP",
            "dra" => "DRA",
            "maxgp" => "max-GP",
            _ if self.arch == Architecture::Stylegan2 => "R1 every D step",
            _ => "R1",
        });
        let methods = [
            (self.latent_op, "LOGAN"),
            (self.diffaug, "DiffAugment"),
            (self.ada, "ADA (bgc, p 0.6)"),
            (self.consistency, "CR"),
        ];
        for what in methods
            .into_iter()
            .filter_map(|(on, what)| on.then_some(what))
            .chain(penalty)
        {
            label += &format!(" + {what}");
        }
        label
    }
}

fn dataset(dir: &Path, size: u32) -> Arc<Packed> {
    let params = Synthetic {
        seed: 0,
        per_class: 64,
        size,
        classes: 10,
        plain: false,
    };
    data::testutil::packed_synthetic(&params, &dir.join(format!("images{size}.pack")))
}

/// The reference benchmark's networks (the authors' defaults for each architecture,
/// orthogonal initialization, hinge loss, Adam 2e-4 with β (0.5, 0.999)).
fn config(row: &Row, iterations: u64) -> (ModelConfig, TrainConfig) {
    let biggan = matches!(row.arch, Architecture::Biggan32 | Architecture::Biggan64);
    let large = row.size() == 64;
    let model = ModelConfig {
        architecture: row.arch,
        conditioning: row.conditioning,
        // The reference benchmark gives BigGAN64 200 classes; the synthetic images have
        // ten, and the class count changes only the sizes of embedding tables.
        num_classes: 10,
        z_dim: match row.arch {
            Architecture::Biggan32 => 80,
            Architecture::Biggan64 => 100,
            _ => 128,
        },
        shared_dim: 128,
        g_conv_dim: row.width,
        d_conv_dim: row.width,
        hyper_dim: if large { 768 } else { 512 },
        nonlinear_embed: false,
        normalize_embed: true,
        g_spectral_norm: biggan,
        d_spectral_norm: true,
        attention: biggan.then_some(Attention {
            g_after_block: if large { 3 } else { 2 },
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
        batch_size: row.batch,
        accumulation_steps: 1,
        total_steps: iterations,
        d_steps_per_iter: row.d_steps,
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
        gradient_penalty: (row.penalty.as_deref() == Some("gp")).then_some(10.0),
        dra_lambda: (row.penalty.as_deref() == Some("dra")).then_some(10.0),
        maxgp_lambda: (row.penalty.as_deref() == Some("maxgp")).then_some(10.0),
        r1_lambda: (row.penalty.as_deref() == Some("r1")).then_some(10.0),
        ema: Some(Ema {
            decay: 0.9999,
            start: 20_000,
        }),
        flip: true,
        sync_bn: false,
        apa: None,
        // p stays at 0.6: it would move by 4·64 / 10¹² every 4 iterations.
        ada: row.ada.then_some(Ada {
            pipeline: AdaPipeline::Bgc,
            p: AdaptiveP {
                initial_p: 0.6,
                target: 0.6,
                kimg: 1e9,
                interval: 4,
            },
        }),
        stylegan2: None,
        apply_diffaug: row.diffaug,
        lecam: None,
        latent_op: row.latent_op.then_some(LatentOpConfig {
            rate: 0.8,
            alpha: 0.9,
            beta: 0.1,
            norm_reg_weight: 0.0,
        }),
        consistency_reg: row.consistency,
        consistency_lambda: 10.0,
        make_positive_aug: false,
    };
    match row.arch {
        Architecture::Stylegan2 => stylegan2(row, model, train),
        _ => (model, train),
    }
}

/// v0.4's CIFAR-10 StyleGAN2 (configs/stylegan2/stylegan2.ron) with `--width` as its
/// `channel_max` (512 there) and, with `--penalty r1`, its lazy R1 after every D step
/// (every 16th there), as `tools/bench/ref_stylegan2_bench.py` runs the authors'.
fn stylegan2(row: &Row, model: ModelConfig, train: TrainConfig) -> (ModelConfig, TrainConfig) {
    let model = ModelConfig {
        z_dim: 512,
        shared_dim: 128,
        g_conv_dim: gan::config::DEFAULT_CONV_DIM,
        d_conv_dim: gan::config::DEFAULT_CONV_DIM,
        g_spectral_norm: false,
        d_spectral_norm: false,
        attention: None,
        stylegan2: Some(Box::new(Stylegan2Model {
            resolution: 32,
            w_dim: 512,
            mapping_network: 2,
            channel_base: 32768,
            channel_max: row.width,
            d_architecture: DBlocks::Orig,
            d_epilogue_mbstd_group_size: 32,
            style_mixing_p: 0.0,
        })),
        ..model
    };
    let train = TrainConfig {
        g_lr: 0.0025,
        d_lr: 0.0025,
        beta1: 0.0,
        beta2: 0.99,
        adv_loss: AdvLoss::Logistic,
        r1_lambda: row.penalty.is_some().then_some(0.01),
        ema: None,
        stylegan2: Some(Stylegan2Training {
            g_reg_interval: 4,
            d_reg_interval: 1,
            g_ema_kimg: Some(500.0),
            g_ema_rampup: Some(0.05),
            pl_weight: None,
        }),
        ..train
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

/// Operations that only change how a tensor is indexed (no kernel where the backend
/// keeps strides).
const LAYOUT: [&str; 4] = ["Reshape", "SwapDims", "Permute", "Expand"];

/// The counts of `iterations` iterations, per iteration: operations (layout ones
/// apart), reads, writes and the commonest kinds.
fn per_iteration(first: &Counts, last: &Counts, iterations: u64) -> String {
    let per = |a: u64, b: u64| (b - a) as f64 / iterations as f64;
    let mut kinds: Vec<(&String, f64)> = last
        .by_kind
        .iter()
        .map(|(kind, &n)| (kind, per(first.by_kind.get(kind).copied().unwrap_or(0), n)))
        .collect();
    let layout: f64 = kinds
        .iter()
        .filter(|(kind, _)| LAYOUT.contains(&kind.as_str()))
        .map(|(_, n)| n)
        .sum();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let commonest: Vec<String> = kinds
        .iter()
        .take(12)
        .map(|(kind, n)| format!("{kind} {n:.0}"))
        .collect();
    let operations = per(first.operations, last.operations);
    format!(
        "{operations:.0} operations per iteration ({:.0} without the {layout:.0} that only \
         reshape, transpose or broadcast), {:.1} reads and {:.1} writes of host data \
         (the losses read after every iteration here); commonest: {}",
        operations - layout,
        per(first.reads, last.reads),
        per(first.writes, last.writes),
        commonest.join(", ")
    )
}

/// The kernels launched so far, from CubeCL's log (none without one). Its logger
/// writes from a thread of its own: the wait lets it catch up with the launches an
/// iteration made (the losses' read has waited for them).
fn launched(log: &Option<std::path::PathBuf>) -> u64 {
    let Some(file) = log else { return 0 };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().filter(|l| l.contains("Executing")).count() as u64
}

/// The kernels most launched after the first `skip`, per iteration, by name.
#[cfg(feature = "wgpu")]
fn commonest_kernels(log: &Option<std::path::PathBuf>, skip: u64, iterations: u64) -> String {
    let Some(file) = log else {
        return String::new();
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
    let names = text.lines().filter_map(|l| l.split("Executing ").nth(1));
    for name in names.skip(skip as usize) {
        *kinds
            .entry(name.split(" |").next().unwrap_or(name))
            .or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1));
    let top: Vec<String> = kinds
        .iter()
        .take(8)
        .map(|(name, n)| format!("{name} {:.0}", *n as f64 / iterations as f64))
        .collect();
    top.join(", ")
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The value after `--name`, parsed, if given.
fn option<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    let value = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} {value}: not a valid value")),
    )
}

fn architecture(name: &str) -> Option<Architecture> {
    Some(match name {
        "dcgan" | "dcgan32" => Architecture::Dcgan32,
        "resgan32" => Architecture::Resgan32,
        "biggan" | "biggan32" => Architecture::Biggan32,
        "biggan64" => Architecture::Biggan64,
        "stylegan2" => Architecture::Stylegan2,
        _ => return None,
    })
}

fn main() {
    kernels::memory::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let count = flag("--count");
    let iterations: u64 = option(&args, "--iterations").unwrap_or(if count { 1 } else { 3 });
    let devices: usize = option(&args, "--devices").unwrap_or(1);
    let penalty: Option<String> = option(&args, "--penalty");
    if let Some(p) = &penalty
        && !["gp", "dra", "maxgp", "r1"].contains(&p.as_str())
    {
        panic!("--penalty {p}: one of gp, dra, maxgp, r1");
    }
    let latent_op = flag("--latent-op");
    let cond: Option<String> = option(&args, "--cond");
    let conditioning = match cond.as_deref() {
        None if latent_op || flag("--projection") || flag("stylegan2") => Conditioning::Projection,
        None | Some("contra") => Conditioning::Contrastive,
        Some("proj") => Conditioning::Projection,
        Some("ac") => Conditioning::Acgan,
        Some(other) => panic!("--cond {other}: one of contra, proj, ac"),
    };
    let gpus: Vec<u32> = (0..Device::visible_gpus().min(devices) as u32).collect();
    let mut archs: Vec<Architecture> = args.iter().filter_map(|a| architecture(a)).collect();
    if archs.is_empty() {
        // The smaller first: peak memory only grows.
        archs = vec![Architecture::Dcgan32, Architecture::Biggan32];
    }
    let dir = tempfile::tempdir().expect("temp dir");
    #[cfg(feature = "wgpu")]
    let wgpu = [("--wgpu", true), ("--wgpu-unfused", false)]
        .into_iter()
        .find_map(|(name, fused)| flag(name).then_some(fused));
    #[cfg(not(feature = "wgpu"))]
    let wgpu: Option<bool> = None;
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    let launches = (flag("--kernels") || wgpu.is_some()).then(|| {
        let file = dir.path().join("kernels.log");
        kernels::device::log_kernel_launches(&file);
        file
    });
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    let launches = wgpu.and(None);
    for arch in archs {
        let row = Row {
            arch,
            conditioning,
            width: option(&args, "--width").unwrap_or(match arch {
                Architecture::Biggan32 => 96,
                Architecture::Biggan64 => 80,
                Architecture::Stylegan2 => 512,
                _ => 64,
            }),
            d_steps: option(&args, "--d-steps").unwrap_or(match arch {
                Architecture::Biggan32 => 5,
                Architecture::Resgan32 => 2,
                _ => 1,
            }),
            penalty: penalty.clone(),
            latent_op,
            diffaug: flag("--diffaug"),
            ada: flag("--ada"),
            consistency: flag("--cr"),
            batch: option(&args, "--batch").unwrap_or(64),
        };
        let data = dataset(dir.path(), row.size());
        let (model, train) = config(&row, iterations + 1);
        let label = row.label();
        let work = dir.path().join(format!("{arch:?}"));
        std::fs::create_dir_all(&work).unwrap();
        let steps = std::sync::Mutex::new(Vec::new());
        let progress = |log: &StepLog| {
            eprintln!(
                "  {label} iteration {}: {:.0} ms",
                log.step,
                1e3 * log.seconds
            );
            let step = (log.seconds, counted::counts(), launched(&launches));
            steps.lock().unwrap().push(step);
        };
        let cancel = AtomicBool::new(false);
        let setup = Setup {
            model: &model,
            train: &train,
            seed: 1,
            data,
            work: &work,
            checkpoint_every: 0,
            start: None,
            evaluation: None,
            cancel: &cancel,
            progress: &progress,
            // The losses read after every iteration: on a GPU, an iteration's time then
            // includes waiting for its work.
            log_every: 1,
        };
        if count {
            counted::reset();
            let devices = vec![Default::default(); devices];
            train::run::<Counted, _>(&setup, devices).expect("training runs");
            let steps = steps.into_inner().unwrap();
            let (first, last) = (&steps[0].1, &steps[steps.len() - 1].1);
            println!(
                "{label} on the counting backend: {}",
                per_iteration(first, last, iterations)
            );
            continue;
        }
        #[cfg(feature = "wgpu")]
        if let Some(fused) = wgpu {
            let devices = vec![Default::default(); devices];
            let result = if fused {
                train::run::<burn::backend::Wgpu, _>(&setup, devices)
            } else {
                train::run::<kernels::WgpuUnfused, _>(&setup, devices)
            };
            result.expect("training runs");
            let steps = steps.into_inner().unwrap();
            let timed: Vec<f64> = steps[1..].iter().map(|s| s.0).collect();
            let launched = (steps[steps.len() - 1].2 - steps[0].2) as f64 / iterations as f64;
            let fusion = if fused { "fused" } else { "not fused" };
            let commonest = commonest_kernels(&launches, steps[0].2, iterations);
            println!(
                "{label} on wgpu ({fusion}): {launched:.0} kernels launched per iteration, \
                 {:.0} ms per iteration (mean of {}); commonest: {commonest}",
                1e3 * timed.iter().sum::<f64>() / timed.len() as f64,
                timed.len()
            );
            continue;
        }
        let device = Device::Auto.in_slot(&gpus);
        let (result, used) = device
            .run_shards(&gpus, devices, Run(&setup))
            .expect("a device");
        result.expect("training runs");
        let steps = steps.into_inner().unwrap();
        let launched = (steps[steps.len() - 1].2 - steps[0].2) as f64 / iterations as f64;
        let mut timed: Vec<f64> = steps[1..].iter().map(|s| s.0).collect();
        timed.sort_by(f64::total_cmp);
        let median = timed[timed.len() / 2];
        let mean = timed.iter().sum::<f64>() / timed.len() as f64;
        let memory = peak_rss_mib()
            .map(|m| format!("{m:.0} MiB peak RSS (process)"))
            .unwrap_or_else(|| "peak memory unknown".into());
        let memory = match &launches {
            Some(_) => format!("{memory}, {launched:.0} kernels launched per iteration"),
            None => memory,
        };
        println!(
            "{label} on {used}: {:.0} ms per iteration (median of {}; mean {:.0}), {memory}",
            1e3 * median,
            timed.len(),
            1e3 * mean,
        );
    }
}
