//! `pipe metric`: FID, IS, KID, precision/recall/density/coverage and features, outside
//! pipelines, on image folders, packed data sets, statistics or feature files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use stages::data::{Packed, decode_rgb};
use stages::device::Device;
use stages::metrics::extract::{Extraction, Extractor, ImageSource};
use stages::metrics::inception::{CLASSES, FEATURES};
use stages::metrics::prdc::{Ball, prdc};
use stages::metrics::{
    Features, MetricError, Stats, fid::fid, inception_score::inception_score, kid::kid, npy, stats,
};

use super::{CliError, Ctx, out, print_json};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// FID between two sets. Each is an image folder, a packed data set (`images.pack` or
    /// a Dataset output folder), a pytorch-fid/TTUR `.npz` of statistics, or an `.npy` of
    /// features (n × 2048).
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
    /// Write the pool features (`pool3`) and logits of images to an `.npz`.
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
    /// The FID Inception weights (pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`);
    /// needed when an input is images.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// `auto`, `cpu`, or `cuda` / `cuda:N`.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: Device,
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

/// What an input path holds, once read.
enum Loaded {
    Stats(Stats),
    /// Pool features, and logits when known.
    Features(Features, Option<Features>),
}

/// Image files of a folder, decoded on demand.
struct FolderImages {
    files: Vec<PathBuf>,
}

impl ImageSource for FolderImages {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn image(&self, i: usize) -> Result<(usize, usize, Cow<'_, [u8]>), MetricError> {
        let path = &self.files[i];
        let bytes = std::fs::read(path).map_err(MetricError::io(path))?;
        let (w, h, px) = decode_rgb(&bytes, None)
            .map_err(|e| MetricError::format(path.display().to_string(), e))?;
        Ok((w as usize, h as usize, Cow::Owned(px)))
    }
}

fn fail(e: MetricError) -> CliError {
    CliError::Message(e.to_string())
}

fn features_of(array: npy::Array, file: &Path) -> Result<Features, CliError> {
    let (rows, cols) = array.matrix().ok_or_else(|| {
        CliError::Message(format!(
            "`{}`: expected a 2-d array, found shape {:?}",
            file.display(),
            array.shape
        ))
    })?;
    Ok(Features::new(rows, cols, array.data))
}

/// Reads an input: statistics, features, or images run through the network.
fn load(path: &Path, net: &NetArgs, quiet: bool) -> Result<Loaded, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if path.is_file() && ext == "npz" {
        let arrays = npy::read_npz(path).map_err(fail)?;
        if arrays.iter().any(|(k, _)| k == "mu") {
            return Ok(Loaded::Stats(Stats::read_npz(path).map_err(fail)?));
        }
        let take = |key: &str| {
            arrays
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, a)| a.clone())
        };
        let pool3 = take("pool3").ok_or_else(|| {
            CliError::Message(format!(
                "`{}`: neither `mu`/`sigma` statistics nor `pool3` features",
                path.display()
            ))
        })?;
        let logits = take("logits").map(|a| features_of(a, path)).transpose()?;
        return Ok(Loaded::Features(features_of(pool3, path)?, logits));
    }
    if path.is_file() && ext == "npy" {
        let features = features_of(npy::read(path).map_err(fail)?, path)?;
        return Ok(match features.cols {
            CLASSES => Loaded::Features(features.clone(), Some(features)),
            _ => Loaded::Features(features, None),
        });
    }
    let packed_path = if path.is_dir() {
        path.join("images.pack")
    } else {
        path.to_path_buf()
    };
    if packed_path.is_file() && (ext == "pack" || path.is_dir()) {
        let packed = Packed::open(&packed_path).map_err(|e| CliError::Message(e.to_string()))?;
        return extract(&packed, path, net, quiet);
    }
    if path.is_dir() {
        return extract(&folder_images(path)?, path, net, quiet);
    }
    Err(CliError::Message(format!(
        "`{}` is not an image folder, a packed data set, an .npz of statistics or an .npy of features",
        path.display()
    )))
}

fn folder_images(dir: &Path) -> Result<FolderImages, CliError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::Message(format!("`{}`: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let is_image = |p: &PathBuf| {
        matches!(
            p.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("png" | "jpg" | "jpeg")
        )
    };
    let (images, others): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(is_image);
    if !others.is_empty() {
        let names: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "note: skipping {} files that are not PNG or JPEG images: {}",
            others.len(),
            names.join(", ")
        );
    }
    if images.is_empty() {
        return Err(CliError::Message(format!(
            "`{}` holds no PNG or JPEG images",
            dir.display()
        )));
    }
    let mut sizes = std::collections::BTreeSet::new();
    for p in &images {
        if let Ok((w, h)) = image::image_dimensions(p) {
            sizes.insert((w, h));
        }
    }
    if sizes.len() > 1 {
        let list: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}×{h}")).collect();
        eprintln!(
            "note: `{}` holds images of {} sizes ({}); each is resized to 299×299 by the network",
            dir.display(),
            sizes.len(),
            list.join(", ")
        );
    }
    Ok(FolderImages { files: images })
}

fn extract(
    images: &dyn ImageSource,
    path: &Path,
    net: &NetArgs,
    quiet: bool,
) -> Result<Loaded, CliError> {
    let weights = net.weights.as_ref().ok_or_else(|| {
        CliError::Message(format!(
            "`{}` holds images: give the FID Inception weights with --weights FILE",
            path.display()
        ))
    })?;
    let bar = ProgressBar::with_draw_target(
        Some(images.len() as u64),
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
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let extractor = Extractor::Inception(weights.clone());
    let task = Extraction {
        extractor: &extractor,
        images,
        batch: net.batch.max(1),
        keep: true,
        progress: &progress,
        cancel: &cancel,
    };
    let (result, used) = net.device.run(task).map_err(CliError::Message)?;
    bar.finish_and_clear();
    tracing::info!("features of {} on {used}", path.display());
    let e = result.map_err(fail)?;
    Ok(Loaded::Features(
        Features::new(
            e.count,
            e.features,
            e.pool3.iter().map(|&v| v as f64).collect(),
        ),
        Some(Features::new(
            e.count,
            e.classes,
            e.logits.iter().map(|&v| v as f64).collect(),
        )),
    ))
}

fn pool_features(loaded: Loaded, path: &Path) -> Result<Features, CliError> {
    match loaded {
        Loaded::Features(f, _) => Ok(f),
        Loaded::Stats(_) => Err(CliError::Message(format!(
            "`{}` holds statistics; this metric needs features or images",
            path.display()
        ))),
    }
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
                    Loaded::Features(f, _) => stats::of(&f)
                        .map_err(|e| CliError::Message(format!("`{}`: {e}", p.display()))),
                }
            };
            let value = fid(&to_stats(&a)?, &to_stats(&b)?).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "fid", "fid": value, "a": a, "b": b}),
                format!("FID: {value:.6}"),
            );
        }
        Command::Is { input, splits, net } => {
            let logits = match load(&input, &net, ctx.quiet)? {
                Loaded::Features(_, Some(logits)) => logits,
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
            let fa = pool_features(load(&a, &net, ctx.quiet)?, &a)?;
            let fb = pool_features(load(&b, &net, ctx.quiet)?, &b)?;
            let (mean, std) = kid(&fa, &fb, subsets, subset_size, seed).map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "kid", "kid_mean": mean, "kid_std": std}),
                format!("KID: {mean:.8} ± {std:.8}"),
            );
        }
        Command::Prdc { real, fake, net } => {
            let r = pool_features(load(&real, &net, ctx.quiet)?, &real)?;
            let f = pool_features(load(&fake, &net, ctx.quiet)?, &fake)?;
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
        Command::Features {
            out: file,
            images,
            net,
        } => {
            let (mut pool, mut logits, mut n) = (Vec::new(), Vec::new(), 0);
            for path in &images {
                match load(path, &net, ctx.quiet)? {
                    Loaded::Features(f, Some(l)) if f.cols == FEATURES => {
                        n += f.rows;
                        pool.extend(f.data);
                        logits.extend(l.data);
                    }
                    _ => {
                        return Err(CliError::Message(format!(
                            "`{}`: expected images",
                            path.display()
                        )));
                    }
                }
            }
            npy::write_npz(
                &file,
                &[
                    ("pool3", npy::encode(&[n, FEATURES], &pool, true)),
                    ("logits", npy::encode(&[n, CLASSES], &logits, true)),
                ],
            )
            .map_err(fail)?;
            report(
                &net,
                json!({"schema": 1, "metric": "features", "images": n, "out": file}),
                format!("wrote features of {n} images to {}", file.display()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
