//! `pipe metric`: FID, IS, KID, precision/recall/density/coverage, intra-class FID and
//! features, outside pipelines, on image folders, packed data sets, statistics or
//! feature files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use stages::kernels::device::Device;
use stages::measure::{self, Loaded, Network};
use stages::metrics::backbone::Backbone;
use stages::metrics::ifid::intra_class_fid;
use stages::metrics::inception::CLASSES;
use stages::metrics::prdc::{Ball, prdc};
use stages::metrics::resize::Resizer;
use stages::metrics::{
    Features, Stats, fid::fid, inception_score::inception_score, kid::kid, npy, stats,
};

use super::{CliError, Ctx, out, print_json};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// FID between two sets (with `--backbone`, the Fréchet distance in that network's
    /// features: FD_DINOv2, …). Each is an image folder, a packed data set
    /// (`images.pack` or a Dataset output folder), a pytorch-fid/TTUR `.npz` of
    /// statistics, or an `.npy` of features (n × 2048 for Inception).
    Fid {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Inception Score (10 splits) of images, or of an `.npy` of logits (n × 1008).
    Is {
        input: PathBuf,
        #[arg(long, default_value_t = 10)]
        splits: usize,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Kernel Inception Distance between two sets of images or features.
    Kid {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value_t = 100)]
        subsets: usize,
        #[arg(long, default_value_t = 1000)]
        subset_size: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Precision and recall (k = 3, torch-fidelity) and precision, recall, density and
    /// coverage (k = 5, prdc) of FAKE against REAL.
    Prdc {
        real: PathBuf,
        fake: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Intra-class FID of FAKE against REAL (StudioGAN v0.4's iFID): the FID of each
    /// class's images against the real images of that class, and their mean. Each is a
    /// packed data set (`images.pack`, or a Dataset or Sample output folder: the labels
    /// come from the pack) or an `.npz` of features with `pool3` and `labels` (as
    /// `pipe metric features` writes for packed sets).
    Ifid {
        real: PathBuf,
        fake: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Write the pool features (`pool3`) and, in Inception, logits of images to an
    /// `.npz`, and their `labels` when every input is a packed data set.
    Features {
        #[arg(long, value_name = "F.npz")]
        out: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct NetArgs {
    /// The network images are measured in: `inception` (pytorch-fid's Inception-v3, the
    /// paper's), `swav` (SwAV's ResNet-50), `dino` (DINO's ViT-S/8) or `dinov2`
    /// (DINOv2's ViT-L/14, as dgm-eval). Features of different backbones never compare.
    #[arg(long, default_value = "inception", value_parser = parse_backbone)]
    backbone: Backbone,
    /// The backbone's released weights, needed when an input is images:
    /// `pt_inception-2015-12-05-6726825d.pth`, `swav_800ep_pretrain.pth.tar`,
    /// `dino_deitsmall8_pretrain.pth` or `dinov2_vitl14_pretrain.pth`.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// `auto`, `cpu`, or `cuda` / `cuda:N`.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: Device,
    /// The resize of images to the network's input (299×299 for Inception, else
    /// 224×224): `legacy` (the reference's default: pytorch-fid's bilinear, the paper's;
    /// for DINOv2, dgm-eval's 8-bit bicubic) or `clean` (PIL's bicubic with
    /// antialiasing, as clean-fid and StudioGAN's `--post_resizer clean`). Both sides of
    /// a comparison must use the same one.
    #[arg(long, default_value = "legacy", value_parser = parse_resizer)]
    resizer: Resizer,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_device(text: &str) -> Result<Device, String> {
    match text {
        "auto" => Ok(Device::Auto),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`{other}`: expected auto, cpu, cuda or cuda:N")),
    }
}

fn parse_backbone(text: &str) -> Result<Backbone, String> {
    text.parse()
}

fn parse_resizer(text: &str) -> Result<Resizer, String> {
    match text {
        "legacy" => Ok(Resizer::Legacy),
        "clean" => Ok(Resizer::Clean),
        other => Err(format!("`{other}`: expected legacy or clean")),
    }
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::Message(e.to_string())
}

/// Reads an input as `stages::measure` does, with a progress bar while images run
/// through the network.
fn load(path: &Path, net: &NetArgs, quiet: bool) -> Result<Loaded, CliError> {
    let bar = ProgressBar::with_draw_target(
        None,
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images {per_sec} {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(path.display().to_string());
    let progress = |_: &Path, done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let note = |text: String| eprintln!("note: {text}");
    let network = Network {
        backbone: net.backbone,
        weights: net.weights.as_deref(),
        batch: net.batch,
        device: net.device,
        resizer: net.resizer,
        progress: &progress,
        note: &note,
    };
    let loaded = measure::load(path, &network).map_err(fail);
    bar.finish_and_clear();
    loaded
}

fn report(net: &NetArgs, value: serde_json::Value, text: String) {
    if net.json {
        print_json(&value);
    } else {
        out(text);
    }
}

pub fn metric(ctx: &Ctx, command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Fid { a, b, net } => {
            let to_stats = |p: &Path| -> Result<Stats, CliError> {
                match load(p, &net, ctx.quiet)? {
                    Loaded::Stats(s) => Ok(s),
                    Loaded::Features(f, ..) => stats::of(&f)
                        .map_err(|e| CliError::Message(format!("`{}`: {e}", p.display()))),
                }
            };
            let value = fid(&to_stats(&a)?, &to_stats(&b)?).map_err(fail)?;
            let name = net.backbone.fd_name();
            let key = name.to_lowercase();
            report(
                &net,
                json!({"schema": 1, "metric": key, key.as_str(): value, "a": a, "b": b}),
                format!("{name}: {value:.6}"),
            );
        }
        Command::Is { input, splits, net } => {
            if !net.backbone.is_inception() {
                return Err(CliError::Message(format!(
                    "the Inception Score is Inception's: {} has no class logits",
                    net.backbone
                )));
            }
            let logits = match load(&input, &net, ctx.quiet)? {
                Loaded::Features(_, Some(logits), _) => logits,
                _ => {
                    return Err(CliError::Message(format!(
                        "`{}`: the Inception Score needs logits (n × {CLASSES}) or images",
                        input.display()
                    )));
                }
            };
            let (mean, std) = inception_score(&logits, splits).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "is", "is_mean": mean, "is_std": std, "splits": splits}),
                format!("IS: {mean:.6} ± {std:.6}"),
            );
        }
        Command::Kid {
            a,
            b,
            subsets,
            subset_size,
            seed,
            net,
        } => {
            let fa = load(&a, &net, ctx.quiet)?.pool_features(&a).map_err(fail)?;
            let fb = load(&b, &net, ctx.quiet)?.pool_features(&b).map_err(fail)?;
            let (mean, std) = kid(&fa, &fb, subsets, subset_size, seed).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "kid", "kid_mean": mean, "kid_std": std}),
                format!("KID: {mean:.8} ± {std:.8}"),
            );
        }
        Command::Prdc { real, fake, net } => {
            let r = load(&real, &net, ctx.quiet)?
                .pool_features(&real)
                .map_err(fail)?;
            let f = load(&fake, &net, ctx.quiet)?
                .pool_features(&fake)
                .map_err(fail)?;
            let pr = prdc(&r, &f, 3, Ball::Closed).map_err(fail)?;
            let dc = prdc(&r, &f, 5, Ball::Open).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "prdc", "precision_k3": pr.precision, "recall_k3": pr.recall, "prdc_k5": dc}),
                format!(
                    "precision (k=3): {:.6}\nrecall (k=3): {:.6}\nprdc (k=5): precision {:.6}, recall {:.6}, density {:.6}, coverage {:.6}",
                    pr.precision, pr.recall, dc.precision, dc.recall, dc.density, dc.coverage
                ),
            );
        }
        Command::Ifid { real, fake, net } => {
            let labelled = |path: &Path| -> Result<(Features, Vec<u32>), CliError> {
                match load(path, &net, ctx.quiet)? {
                    Loaded::Features(f, _, Some(labels)) => Ok((f, labels)),
                    _ => Err(CliError::Message(format!(
                        "`{}`: intra-class FID needs labelled images: a packed data set, or an \
                         .npz of features with `labels`",
                        path.display()
                    ))),
                }
            };
            let (r, r_labels) = labelled(&real)?;
            let (f, f_labels) = labelled(&fake)?;
            let (classes, mean) = intra_class_fid(&r, &r_labels, &f, &f_labels).map_err(fail)?;
            let per_class: Vec<serde_json::Value> = classes
                .iter()
                .map(|c| json!({"class": c.class, "fid": c.fid, "real": c.real, "generated": c.fake}))
                .collect();
            let mut text = format!("iFID: {mean:.6} (mean over {} classes)", classes.len());
            for c in &classes {
                text.push_str(&format!(
                    "\n  class {}: {:.6} ({} real, {} generated)",
                    c.class, c.fid, c.real, c.fake
                ));
            }
            report(
                &net,
                json!({"schema": 1, "metric": "ifid", "ifid": mean, "classes": per_class}),
                text,
            );
        }
        Command::Features {
            out: file,
            images,
            net,
        } => {
            let (mut pool, mut logits, mut n) = (Vec::new(), Vec::new(), 0);
            let mut labels = Some(Vec::new());
            let width = net.backbone.features();
            let inception = net.backbone.is_inception();
            for path in &images {
                match load(path, &net, ctx.quiet)? {
                    Loaded::Features(f, l, these)
                        if f.cols == width && (l.is_some() || !inception) =>
                    {
                        n += f.rows;
                        pool.extend(f.data);
                        logits.extend(l.map(|l| l.data).unwrap_or_default());
                        labels = labels.zip(these).map(|(mut all, these)| {
                            all.extend(these.iter().map(|&c| c as f64));
                            all
                        });
                    }
                    _ => {
                        return Err(CliError::Message(format!(
                            "`{}`: expected images",
                            path.display()
                        )));
                    }
                }
            }
            let mut arrays = vec![("pool3", npy::encode(&[n, width], &pool, true))];
            if inception {
                arrays.push(("logits", npy::encode(&[n, CLASSES], &logits, true)));
            }
            if let Some(labels) = &labels {
                arrays.push(("labels", npy::encode(&[n], labels, false)));
            }
            npy::write_npz(&file, &arrays).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "features", "images": n, "out": file}),
                format!("wrote features of {n} images to {}", file.display()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
