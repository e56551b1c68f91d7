//! Evaluation end to end: `Weights` and `InceptionStats` stages, `pipe metric` on the
//! fixtures, and the bad inputs each with its message.

mod common;

use std::path::PathBuf;

use common::*;
use stages::data::testutil::save_state_dict;

fn weights() -> PathBuf {
    inception_weights()
}

fn expected(key: &str) -> f64 {
    let text = std::fs::read_to_string(fixtures("metrics").join("expected.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[key]
        .as_f64()
        .unwrap()
}

fn metric(p: &Project, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["metric"];
    all.extend_from_slice(args);
    p.json(&all, 0)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn pipe_metric_on_the_fixture_files() {
    let p = Project::new();
    let m = fixtures("metrics");
    let path = |n: &str| m.join(n).display().to_string();
    let fid = metric(&p, &["fid", &path("fid_a.npz"), &path("fid_b.npz")]);
    assert!(
        rel(fid["fid"].as_f64().unwrap(), expected("fid_a_b")) < 1e-6,
        "{fid}"
    );
    let is = metric(&p, &["is", &path("is_logits.npy")]);
    assert!(
        rel(is["is_mean"].as_f64().unwrap(), expected("is_mean")) < 1e-6,
        "{is}"
    );
    // One subset holding every sample, as the reference computed it.
    let rows = |n: &str| {
        let array = stages::metrics::npy::read(&m.join(n)).unwrap();
        array.matrix().expect("2-d features").0
    };
    let every = rows("kid_a.npy").min(rows("kid_b.npy")).to_string();
    let kid = metric(
        &p,
        &[
            "kid",
            &path("kid_a.npy"),
            &path("kid_b.npy"),
            "--subsets",
            "1",
            "--subset-size",
            &every,
        ],
    );
    assert!(
        rel(kid["kid_mean"].as_f64().unwrap(), expected("kid_mean")) < 1e-6,
        "{kid}"
    );
    let prdc = metric(&p, &["prdc", &path("pr_real.npy"), &path("pr_fake.npy")]);
    assert!(
        (prdc["precision_k3"].as_f64().unwrap() - expected("precision_k3")).abs() < 1e-6,
        "{prdc}"
    );
    assert!(
        (prdc["prdc_k5"]["density"].as_f64().unwrap() - expected("prdc_k5_density")).abs() < 1e-6,
        "{prdc}"
    );
    let text = text(
        &p.pipe(&["metric", "fid", &path("fid_a.npz"), &path("fid_a.npz")])
            .stdout,
    );
    assert!(
        text.starts_with("FID: 0.000000") || text.starts_with("FID: -0.000000"),
        "{text}"
    );
}

#[test]
fn statistics_stage_and_features_from_images() {
    let p = Project::new();
    p.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "eval", stages: {{
                "inception": Weights(path: Some("{}")),
                "shapes": Dataset(source: Synthetic(seed: 3, per_class: 1, size: 32, classes: 4), split: Test),
                "stats": InceptionStats(data: "shapes", weights: "inception", features: true, batch: 3, device: Cpu),
            }})"#,
            weights().display()
        ),
    );
    let report = p.run("p.ron", &[], 0);
    assert_eq!(
        with_action(&report, "ran"),
        ["inception", "shapes", "stats"]
    );
    let out = PathBuf::from(stage(&report, "stats")["output"].as_str().unwrap());
    let shapes = stage(&report, "shapes")["output"]
        .as_str()
        .unwrap()
        .to_string();
    let stats = out.join("stats.npz").display().to_string();
    let pool3 = out.join("pool3.npy").display().to_string();
    let w = weights().display().to_string();
    // The same images through `pipe metric`, from the packed data set: FID 0.
    let same = metric(
        &p,
        &["fid", &stats, &shapes, "--weights", &w, "--device", "cpu"],
    );
    assert!(same["fid"].as_f64().unwrap().abs() < 1e-3, "{same}");
    let from_features = metric(&p, &["fid", &stats, &pool3]);
    assert!(
        from_features["fid"].as_f64().unwrap().abs() < 1e-6,
        "{from_features}"
    );
    let show = p.json(&["show", "p.ron", "stats"], 0);
    assert_eq!(show["record"]["metrics"]["images"], 4.0);
    assert!(
        show["record"]["summary"]
            .as_str()
            .unwrap()
            .contains("on cpu (burn-flex)")
    );
}

#[test]
fn features_of_an_image_folder_with_mixed_sizes_and_stray_files() {
    let p = Project::new();
    let dir = p.path("imgs");
    std::fs::create_dir_all(&dir).unwrap();
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 10, 10]))
        .save(dir.join("a.png"))
        .unwrap();
    image::RgbImage::from_pixel(48, 40, image::Rgb([10, 200, 10]))
        .save(dir.join("b.png"))
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    let out = p.path("f.npz").display().to_string();
    let w = weights().display().to_string();
    let run = p.pipe(&[
        "metric",
        "features",
        "--weights",
        &w,
        "--device",
        "cpu",
        "--out",
        &out,
        &dir.display().to_string(),
    ]);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "note: skipping 1 files that are not PNG or JPEG images: {}",
            dir.join("notes.txt").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("holds images of 2 sizes (32×32, 48×40); each is resized to 299×299"),
        "{stderr}"
    );
    let arrays = stages::metrics::npy::read_npz(std::path::Path::new(&out)).unwrap();
    assert_eq!(arrays["pool3"].shape, [2, 2048]);
    assert_eq!(arrays["logits"].shape, [2, 1008]);
}

#[test]
fn intra_class_fid_and_the_clean_resizer_from_the_command_line() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "ifid", stages: {
            "pairs": Dataset(source: Synthetic(seed: 4, per_class: 2, size: 32, classes: 3), split: Test),
            "singles": Dataset(source: Synthetic(seed: 5, per_class: 1, size: 32, classes: 3), split: Test),
        })"#,
    );
    let report = p.run("p.ron", &[], 0);
    let pairs = stage(&report, "pairs")["output"]
        .as_str()
        .unwrap()
        .to_string();
    let singles = stage(&report, "singles")["output"]
        .as_str()
        .unwrap()
        .to_string();
    let w = weights().display().to_string();
    let net = ["--weights", w.as_str(), "--device", "cpu"];
    // Features of a packed set keep its labels; the set against its own features: 0.
    let features = p.path("pairs.npz").display().to_string();
    let mut args = vec!["metric", "features", "--out", &features, &pairs];
    args.extend(net);
    assert!(p.pipe(&args).status.success());
    let arrays = stages::metrics::npy::read_npz(std::path::Path::new(&features)).unwrap();
    let labels = arrays.get("labels").expect("labels");
    let mut sorted = labels.data.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    let mut args = vec!["ifid", &pairs, &features];
    args.extend(net);
    let same = metric(&p, &args);
    assert!(same["ifid"].as_f64().unwrap().abs() < 1e-3, "{same}");
    assert_eq!(same["classes"].as_array().unwrap().len(), 3, "{same}");
    // A class with one image has no covariance: named, not averaged in.
    let mut args = vec!["metric", "ifid", &pairs, &singles];
    args.extend(net);
    let err = error_of(&p, &args);
    assert!(
        err.contains("class 0 has 2 real and 1 generated images: its FID needs at least 2 of each"),
        "{err}"
    );
    // The resize changes the features: the two resizers disagree on FID.
    let fid = |resizer: &str| {
        let mut args = vec!["fid", &pairs, &singles, "--resizer", resizer];
        args.extend(net);
        metric(&p, &args)["fid"].as_f64().unwrap()
    };
    let (legacy, clean) = (fid("legacy"), fid("clean"));
    assert!((legacy - clean).abs() > 1e-6 * legacy, "{legacy} {clean}");
    let out = p.pipe(&["metric", "fid", &pairs, &singles, "--resizer", "lanczos"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("`lanczos`: expected legacy or clean"), "{err}");
}

fn error_of(p: &Project, args: &[&str]) -> String {
    let out = p.pipe(args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn bad_statistics_and_features() {
    use stages::metrics::npy::{encode, write_npz};
    let p = Project::new();
    let a = p.path("a.npz");
    let b = p.path("b.npz");
    write_npz(
        &a,
        &[
            ("mu", encode(&[2], &[0.0, 0.0], false)),
            ("sigma", encode(&[2, 2], &[1.0, 0.0, 0.0, 1.0], false)),
        ],
    )
    .unwrap();
    write_npz(
        &b,
        &[
            ("mu", encode(&[3], &[0.0; 3], false)),
            (
                "sigma",
                encode(
                    &[3, 3],
                    &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                    false,
                ),
            ),
        ],
    )
    .unwrap();
    let (sa, sb) = (a.display().to_string(), b.display().to_string());
    assert_eq!(
        error_of(&p, &["metric", "fid", &sa, &sb]),
        "error: statistics of different dimensions: 2 and 3 (features of different networks? \
         Inception's and SwAV's have 2048, DINO's 1536, DINOv2's 1024)\n"
    );
    write_npz(
        &b,
        &[
            ("mu", encode(&[2], &[0.0; 2], false)),
            ("sigma", encode(&[2, 2], &[1.0, 0.5, 0.1, 1.0], false)),
        ],
    )
    .unwrap();
    let err = error_of(&p, &["metric", "fid", &sa, &sb]);
    assert!(
        err.contains("sigma is not symmetric: sigma[0, 1] and sigma[1, 0] differ by"),
        "{err}"
    );
    write_npz(
        &b,
        &[
            ("mu", encode(&[2], &[f64::NAN, 0.0], false)),
            ("sigma", encode(&[2, 2], &[1.0, 0.0, 0.0, 1.0], false)),
        ],
    )
    .unwrap();
    assert!(error_of(&p, &["metric", "fid", &sa, &sb]).ends_with(": mu[0] is NaN\n"));

    let nan = p.path("nan.npy");
    std::fs::write(
        &nan,
        encode(&[3, 2], &[0.0, 1.0, f64::NAN, 0.0, 1.0, 1.0], true),
    )
    .unwrap();
    let sn = nan.display().to_string();
    assert_eq!(
        error_of(&p, &["metric", "kid", &sn, &sn]),
        "error: first features: sample 1 has a non-finite value (NaN) in feature 0\n"
    );
    let one = p.path("one.npy");
    std::fs::write(&one, encode(&[1, 2], &[0.0, 1.0], true)).unwrap();
    assert_eq!(
        error_of(&p, &["metric", "fid", &one.display().to_string(), &sa]),
        format!(
            "error: `{}`: features: 1 samples, at least 2 needed\n",
            one.display()
        )
    );
}

#[test]
fn bad_weight_files_name_the_tensor() {
    let p = Project::new();
    let stage_for = |file: &std::path::Path| {
        format!(
            r#"Pipeline(name: "w", stages: {{"inception": Weights(path: Some("{}"))}})"#,
            file.display()
        )
    };
    let misshaped = p.path("misshaped.pth");
    save_state_dict(
        &misshaped,
        &[(
            "Conv2d_1a_3x3.conv.weight",
            vec![32, 3, 3, 4],
            vec![0.5; 32 * 3 * 3 * 4],
        )],
    );
    p.write("p.ron", &stage_for(&misshaped));
    let report = p.run("p.ron", &[], 1);
    let error = stage(&report, "inception")["error"].as_str().unwrap();
    assert!(error.ends_with("tensor `Conv2d_1a_3x3.conv.weight` has shape [32, 3, 3, 4], the network needs [32, 3, 3, 3]"), "{error}");

    let missing = p.path("missing.pth");
    save_state_dict(
        &missing,
        &[(
            "Conv2d_1a_3x3.conv.weight",
            vec![32, 3, 3, 3],
            vec![0.5; 32 * 27],
        )],
    );
    p.write("p.ron", &stage_for(&missing));
    let error = stage(&p.run("p.ron", &[], 1), "inception")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.ends_with("missing tensor `Conv2d_1a_3x3.bn.weight` (shape [32])"),
        "{error}"
    );

    let truncated = p.path("truncated.pth");
    let bytes = std::fs::read(weights()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    p.write("p.ron", &stage_for(&truncated));
    let error = stage(&p.run("p.ron", &[], 1), "inception")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("truncated file: its tensors need"),
        "{error}"
    );

    let corrupt = p.path("corrupt.pth");
    let mut bytes = bytes;
    bytes[..64].fill(0xAB);
    std::fs::write(&corrupt, &bytes).unwrap();
    p.write("p.ron", &stage_for(&corrupt));
    let error = stage(&p.run("p.ron", &[], 1), "inception")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("not a readable PyTorch file"), "{error}");
}

/// `device: Auto` takes a GPU slot when the run has GPUs and runs on the CPU when it has
/// none; `Cpu` never takes one. `PIPE_VISIBLE_GPUS` stands in for a GPU machine: in a
/// build without CUDA the Auto stage given a GPU then fails, naming the missing feature.
#[test]
fn auto_devices_take_a_gpu_slot_only_when_the_run_has_gpus() {
    let p = Project::new();
    p.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "devices", stages: {{
                "inception": Weights(path: Some("{}")),
                "shapes": Dataset(source: Synthetic(seed: 3, per_class: 1, size: 32, classes: 2), split: Test),
                "auto": InceptionStats(data: "shapes", weights: "inception", device: Auto),
                "cpu": InceptionStats(data: "shapes", weights: "inception", batch: 1, device: Cpu),
            }})"#,
            weights().display()
        ),
    );
    let out = p.pipe(&["run", "p.ron", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The report leaves an empty list of GPUs out.
    for name in ["auto", "cpu"] {
        assert_eq!(
            stage(&report, name)["gpus"],
            serde_json::Value::Null,
            "{name}"
        );
        let show = p.json(&["show", "p.ron", name], 0);
        assert_eq!(show["record"]["device"], "cpu", "{name}");
    }
    let gpu_run = |args: &[&str]| {
        let mut all = vec![
            "run", "p.ron", "--json", "--force", "auto", "--force", "cpu",
        ];
        all.extend_from_slice(args);
        let out = p
            .command(&all)
            .env("PIPE_VISIBLE_GPUS", "1")
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = gpu_run(&["--keep-going"]);
    assert_eq!(stage(&report, "auto")["gpus"], serde_json::json!([0]));
    let error = stage(&report, "auto")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("no CUDA support"), "{error}");
    assert_eq!(stage(&report, "cpu")["gpus"], serde_json::Value::Null);
    assert_eq!(stage(&report, "cpu")["action"], "ran");
    // `--gpus none` runs everything on the CPU even where GPUs are visible.
    let report = gpu_run(&["--gpus", "none"]);
    assert_eq!(stage(&report, "auto")["action"], "ran");
    assert_eq!(stage(&report, "auto")["gpus"], serde_json::Value::Null);
}

/// A release-shaped DINO ViT-S/8 file (every tensor `fixtures/backbones/names/dino.json`
/// lists, small random values): the real weights cannot be downloaded here.
fn dino_weights(p: &Project) -> PathBuf {
    let listing = ::fixtures::ours("backbones").join("names/dino.json");
    let names: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&listing).unwrap()).unwrap();
    let mut state = rng::Rng::new(28);
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = names["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, shape)| {
            let shape: Vec<usize> = serde_json::from_value(shape.clone()).unwrap();
            let n = shape.iter().product();
            let values = (0..n).map(|_| 0.05 * state.normal() as f32).collect();
            (name.clone(), shape, values)
        })
        .collect();
    let borrowed: Vec<_> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
        .collect();
    let path = p.path("dino_deitsmall8_pretrain.pth");
    save_state_dict(&path, &borrowed);
    path
}

/// Statistics, scores and `pipe metric` in DINO's features: the Fréchet distance is
/// named for its backbone, IS is refused, and backbones never meet (weights of
/// another, statistics of another).
#[test]
fn another_backbone_from_weights_to_scores() {
    let p = Project::new();
    let dino = dino_weights(&p);
    let pipeline = |score_backbone: &str, reference: &str| {
        format!(
            r#"Pipeline(name: "eval", stages: {{
                "inception": Weights(path: Some("{}")),
                "dino": Weights(eval_backbone: Dino, path: Some("{}")),
                "shapes": Dataset(source: Synthetic(seed: 3, per_class: 1, size: 32, classes: 4), split: Test),
                "inception_stats": InceptionStats(data: "shapes", weights: "inception", features: true, device: Cpu),
                "stats": InceptionStats(data: "shapes", weights: "dino", eval_backbone: Dino, features: true, device: Cpu),
                "score": Score(samples: "shapes", reference: "{reference}", weights: "dino", {score_backbone} kid: true, device: Cpu),
            }})"#,
            weights().display(),
            dino.display()
        )
    };
    p.write("p.ron", &pipeline("eval_backbone: Dino,", "stats"));
    let report = p.run("p.ron", &[], 0);
    let show = p.json(&["show", "p.ron", "score"], 0);
    let metrics = &show["record"]["metrics"];
    assert!(metrics["fd_dino"].as_f64().unwrap().abs() < 1e-3, "{show}");
    assert!(
        metrics.get("fid").is_none() && metrics.get("is_mean").is_none(),
        "{show}"
    );
    assert!(metrics["kid_mean"].is_number(), "{show}");
    assert_eq!(
        show["record"]["protocol"]["eval backbone"], "Dino",
        "{show}"
    );
    assert!(
        show["record"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("FD_DINO "),
        "{show}"
    );
    let weights_record = p.json(&["show", "p.ron", "dino"], 0);
    assert_eq!(
        weights_record["record"]["protocol"]["eval backbone"],
        "Dino"
    );

    // The same images through `pipe metric`: FD 0, named for the backbone.
    let out = PathBuf::from(stage(&report, "stats")["output"].as_str().unwrap());
    let stats = out.join("stats.npz").display().to_string();
    let shapes = stage(&report, "shapes")["output"]
        .as_str()
        .unwrap()
        .to_string();
    let (w, d) = (dino.display().to_string(), "--device");
    let fd = metric(
        &p,
        &[
            "fid",
            "--backbone",
            "dino",
            &stats,
            &shapes,
            "--weights",
            &w,
            d,
            "cpu",
        ],
    );
    assert!(fd["fd_dino"].as_f64().unwrap().abs() < 1e-3, "{fd}");
    assert_eq!(fd["metric"], "fd_dino");
    let err = error_of(
        &p,
        &[
            "metric",
            "is",
            "--backbone",
            "dino",
            &shapes,
            "--weights",
            &w,
        ],
    );
    assert!(err.contains("the Inception Score is Inception's"), "{err}");
    let err = error_of(
        &p,
        &["metric", "fid", "--backbone", "dino", &stats, &shapes],
    );
    assert!(err.contains("dino_deitsmall8_pretrain.pth"), "{err}");

    // A release without a published checksum downloads unverified, its sha256 recorded
    // to pin; pinned, the download is verified.
    let bytes = std::fs::read(&dino).unwrap();
    let server = common::http::serve(
        std::collections::HashMap::from([("/dino_deitsmall8_pretrain.pth".to_string(), bytes)]),
        None,
    );
    let download = |sha256: &str| {
        format!(
            r#"Pipeline(name: "dl", stages: {{
                "dino": Weights(eval_backbone: Dino, url: Some("{}/dino_deitsmall8_pretrain.pth"){sha256}),
            }})"#,
            server.url
        )
    };
    p.write("dl.ron", &download(""));
    p.run("dl.ron", &[], 0);
    let summary = p.json(&["show", "dl.ron", "dino"], 0)["record"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    let sha256 = summary
        .split("sha256 ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no sha256 in {summary}"))
        .to_string();
    assert!(
        summary.contains("unpinned") && sha256.len() == 64,
        "{summary}"
    );
    p.write(
        "dl.ron",
        &download(&format!(r#", sha256: Some("{}")"#, &sha256[..16])),
    );
    let pinned = p.run("dl.ron", &[], 0);
    assert_eq!(with_action(&pinned, "ran"), ["dino"]);
    p.write("dl.ron", &download(r#", sha256: Some("0000000000000000")"#));
    let error = stage(&p.run("dl.ron", &[], 1), "dino")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("sha256"), "{error}");

    // DINO's weights measured as Inception's, and statistics of another backbone.
    p.write("p.ron", &pipeline("", "stats"));
    let error = stage(&p.run("p.ron", &[], 1), "score")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains(
            "`dino` holds the Dino network's weights, but the backbone here is Inception"
        ),
        "{error}"
    );
    p.write(
        "p.ron",
        &pipeline("eval_backbone: Dino,", "inception_stats"),
    );
    let error = stage(&p.run("p.ron", &[], 1), "score")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("give both the same `weights` and `eval_backbone`"),
        "{error}"
    );
}
