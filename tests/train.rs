//! `Train` stages end to end: configs included from files, a short run on synthetic
//! shapes, its outputs and record, the errors of bad configurations, and training on
//! from the authors' checkpoints.

mod common;

use std::path::PathBuf;

use common::*;
use stages::gan::config::Architecture;
use stages::gan::tensors::Snapshot;

const MODEL: &str = r#"(
    architecture: Biggan32,
    conditioning: Contrastive,
    num_classes: 4,
    z_dim: 20,
    shared_dim: 8,
    g_conv_dim: 4,
    d_conv_dim: 4,
    hyper_dim: 16,
    g_spectral_norm: true,
    d_spectral_norm: true,
    attention: Some((g_after_block: 2, d_after_block: 1)),
)
"#;

const TRAIN: &str = r#"(
    batch_size: 4,
    total_steps: 3,
    d_steps_per_iter: 2,
    g_lr: 2e-4,
    d_lr: 2e-4,
    beta1: 0.5,
    beta2: 0.999,
    adv_loss: Hinge,
    ema: Some((decay: 0.9999, start: 2)),
)
"#;

const PIPELINE: &str = r#"Pipeline(
    name: "train",
    stages: {
        "shapes": Dataset(source: Synthetic(seed: 1, per_class: 3, size: 32, classes: 4), split: Train),
        "gan": Train(
            data: "shapes",
            model: Include("configs/model.ron"),
            train: Include("configs/train.ron"),
            seed: 5,
            device: Cpu,
        ),
        "samples": Sample(model: "gan", count: 10, batch: 4, seed: 1, device: Cpu),
    },
)
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("p.ron", PIPELINE)
        .write("configs/model.ron", MODEL)
        .write("configs/train.ron", TRAIN);
    p
}

#[test]
fn a_short_run_writes_networks_and_a_metrics_log() {
    let p = project();
    let report = p.run("p.ron", &[], 0);
    assert_eq!(
        actions(&report),
        [
            ("shapes".into(), "ran".into()),
            ("gan".into(), "ran".into()),
            ("samples".into(), "ran".into())
        ]
    );
    let show = p.json(&["show", "p.ron", "gan"], 0);
    let metrics = &show["record"]["metrics"];
    assert_eq!(metrics["steps"], 3.0, "{show}");
    assert!(metrics["d_loss"].as_f64().unwrap().is_finite());
    let file = |name: &str| {
        show["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| std::path::PathBuf::from(o["path"].as_str().unwrap()))
            .find(|p| p.ends_with(name))
            .unwrap_or_else(|| panic!("no output {name}: {show}"))
    };
    let dir = file("G.safetensors").parent().unwrap().to_path_buf();
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    let g = Snapshot::load(&dir.join("G.safetensors")).unwrap();
    let ema = Snapshot::load(&dir.join("G_ema.safetensors")).unwrap();
    assert!(g.metadata["model"].contains("Biggan32"));
    assert_eq!(g.metadata["step"], "3");
    assert_ne!(
        g.tensors["linear0.weight_orig"],
        ema.tensors["linear0.weight_orig"]
    );
    assert!(dir.join("D.safetensors").exists() && dir.join("model.json").exists());

    assert!(dir.join("classes.json").exists());

    // Samples: packed like a data set, labelled with the data's classes.
    let show = p.json(&["show", "p.ron", "samples"], 0);
    let pack = show["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| std::path::PathBuf::from(o["path"].as_str().unwrap()))
        .find(|p| p.ends_with("images.pack"))
        .expect("images.pack");
    let samples = stages::data::Packed::open(&pack).unwrap();
    assert_eq!(samples.len(), 10);
    assert_eq!(
        (samples.header().height, samples.header().channels),
        (32, 3)
    );
    assert_eq!(samples.header().classes.len(), 4);
    assert!(pack.with_file_name("preview.png").exists());

    // Nothing changed: nothing runs. A changed training value reruns what depends on it.
    let again = p.run("p.ron", &[], 0);
    assert!(with_action(&again, "ran").is_empty());
    p.write(
        "configs/train.ron",
        &TRAIN.replace("total_steps: 3", "total_steps: 2"),
    );
    let changed = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&changed, "ran"), ["gan", "samples"]);
}

#[test]
fn a_training_split_over_devices_runs_data_parallel_under_its_own_key() {
    let p = project();
    p.run("p.ron", &["gan"], 0);
    let split = p.run("p.ron", &["gan", "--set", "gan.devices=2"], 0);
    assert_eq!(with_action(&split, "ran"), ["gan"], "another key: {split}");
    let show = p.json(&["show", "p.ron", "gan", "--set", "gan.devices=2"], 0);
    let summary = show["record"]["summary"].as_str().unwrap();
    assert!(summary.contains("cpu (burn-flex), 2 shards"), "{summary}");
    let synced = p.run(
        "p.ron",
        &[
            "gan",
            "--set",
            "gan.devices=2",
            "--set",
            "gan.train.sync_bn=true",
        ],
        0,
    );
    assert_eq!(with_action(&synced, "ran"), ["gan"]);

    let out = p.pipe(&["run", "p.ron", "--set", "gan.devices=3"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("3 devices: the batch (4) is split in equal shards"),
        "{err}"
    );
    assert!(err.contains("divides `train.batch_size`"), "{err}");
}

#[test]
fn losses_read_every_log_every_iterations_log_every_iteration() {
    let p = project();
    let out = p.pipe(&["run", "p.ron", "--set", "gan.log_every=0"]);
    let err = text(&out.stderr);
    assert!(err.contains("log_every: 0: the losses are read"), "{err}");
    assert!(
        err.contains("use 1 to read them after every iteration"),
        "{err}"
    );

    p.run("p.ron", &["gan", "--set", "gan.log_every=2"], 0);
    let show = p.json(&["show", "p.ron", "gan", "--set", "gan.log_every=2"], 0);
    let dir = std::path::Path::new(show["output_dir"].as_str().unwrap());
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2, 3], "{lines}");
}

/// A training over N devices takes N GPUs of the run when it has them (`Auto`), fewer
/// shared when it has fewer; two such stages never hold one GPU at once.
/// `PIPE_VISIBLE_GPUS` stands in for a GPU machine: without CUDA the stages then fail,
/// naming the missing feature, after the run gave them their GPUs.
#[test]
fn a_training_over_devices_takes_as_many_gpus_of_the_run() {
    let p = project();
    let text = PIPELINE
        .replace("            device: Cpu,\n        ),", "            device: Auto,\n            devices: 2,\n        ),")
        .replace(
            r#"        "samples": Sample(model: "gan", count: 10, batch: 4, seed: 1, device: Cpu),"#,
            r#"        "other": Train(data: "shapes", model: Include("configs/model.ron"), train: Include("configs/train.ron"), device: Auto, devices: 2),"#,
        );
    p.write("p.ron", &text);
    let gpus_given = |visible: &str| {
        let out = p
            .command(&["run", "p.ron", "--json", "--keep-going", "-j", "2"])
            .env("PIPE_VISIBLE_GPUS", visible)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ["gan", "other"].map(|name| {
            let s = stage(&report, name);
            assert!(
                s["error"].as_str().unwrap().contains("no CUDA support"),
                "{s}"
            );
            serde_json::from_value::<Vec<u32>>(s["gpus"].clone()).unwrap()
        })
    };
    let [a, b] = gpus_given("4");
    assert_eq!((a.len(), b.len()), (2, 2));
    assert!(a.iter().all(|g| !b.contains(g)), "{a:?} {b:?}");
    assert_eq!(
        gpus_given("1"),
        [vec![0], vec![0]],
        "two shards share the one GPU"
    );
}

/// Each method beyond the paper's tables, set on the short run as a user would: it
/// trains, under a key of its own, with finite losses.
#[test]
fn the_methods_beyond_the_tables_train_end_to_end() {
    let p = project();
    let plain = p.run("p.ron", &["gan"], 0);
    assert_eq!(with_action(&plain, "ran"), ["shapes", "gan"]);
    let logan =
        "gan.train.latent_op=Some((rate: 0.8, alpha: 0.9, beta: 0.1, norm_reg_weight: 0.1))";
    let apa = "gan.train.apa=Some((initial_p: 0.5, target: 0.6, kimg: 0.01, interval: 1))";
    let methods: [&[&str]; 14] = [
        &["gan.train.apply_diffaug=true"],
        &[
            "gan.train.adv_loss=Wasserstein",
            "gan.train.gradient_penalty=Some(10.0)",
        ],
        &[
            "gan.train.adv_loss=Wasserstein",
            "gan.train.dra_lambda=Some(10.0)",
        ],
        &["gan.train.maxgp_lambda=Some(0.1)"],
        &["gan.train.r1_lambda=Some(0.5)"],
        &["gan.train.lecam=Some((lambda: 0.3, ema_start_iter: 1, ema_decay: 0.99))"],
        &["gan.model.conditioning=D2DCE"],
        &["gan.train.consistency_reg=true"],
        &["gan.train.make_positive_aug=true"],
        &["gan.model.conditioning=Acgan", "gan.model.aux_cls_type=ADC"],
        &["gan.model.conditioning=D2DCE", "gan.model.aux_cls_type=ADC"],
        &["gan.model.aux_cls_type=ADC"],
        &["gan.model.conditioning=Projection", logan],
        &[apa],
    ];
    for sets in methods {
        let args = with_sets(&["gan"], sets);
        let report = p.run("p.ron", &args, 0);
        assert_eq!(with_action(&report, "ran"), ["gan"], "{sets:?}: {report}");
        let mut show = vec!["show", "p.ron"];
        show.extend(&args);
        let show = p.json(&show, 0);
        let metrics = &show["record"]["metrics"];
        for loss in ["d_loss", "g_loss"] {
            assert!(
                metrics[loss].as_f64().unwrap().is_finite(),
                "{sets:?}: {metrics}"
            );
        }
    }
    // The penalties' passes do not synchronize BatchNorm over devices.
    let refused = [
        (
            &[
                "gan.train.gradient_penalty=Some(10.0)",
                "gan.train.sync_bn=true",
                "gan.model.d_spectral_norm=false",
                "gan.devices=2",
            ][..],
            "synchronized statistics in D",
        ),
        // The seed runs LOGAN in its loop without the 2C loss, and its penalties'
        // points mix in fakes it would differentiate through the move.
        (&[logan], "not built for conditioning Contrastive"),
        (&[logan], "use conditioning None, Projection or Acgan"),
        (
            &[
                logan,
                "gan.model.conditioning=Acgan",
                "gan.train.maxgp_lambda=Some(0.1)",
            ],
            "through the move of z",
        ),
        // R1 would differentiate through DiffAugment.
        (
            &[
                "gan.train.r1_lambda=Some(0.5)",
                "gan.train.apply_diffaug=true",
            ],
            "R1 takes D's gradient at the real images",
        ),
        // APA's replaced images and the in-step penalties' points are not reconciled.
        (
            &[apa, "gan.train.r1_lambda=Some(0.5)"][..],
            "APA with the gradient penalties of D's step is not built",
        ),
        // ADC needs a class head to double.
        (
            &[
                "gan.model.aux_cls_type=ADC",
                "gan.model.conditioning=Projection",
            ],
            "ADC needs a class head: conditioning Acgan, Contrastive or D2DCE",
        ),
    ];
    for (sets, message) in refused {
        let out = p.pipe(&with_sets(&["run", "p.ron", "gan"], sets));
        assert_eq!(out.status.code(), Some(1), "{sets:?}");
        let err = text(&out.stderr);
        assert!(err.contains(message), "{sets:?}: {err}");
    }
}

/// Each StyleGAN2 configuration of configs/stylegan2/, as shipped but at the short
/// run's scale (4 classes, widths of 8, 2 steps, R1 every D step, through DiffAugment
/// or ADA where it is on, path length regularization every G step): G and D train with their
/// regularizers and the EMA, under a key of their own, and the EMA generator samples.
#[test]
fn the_stylegan2_configs_train_end_to_end_at_a_small_scale() {
    let p = project();
    let root = env!("CARGO_MANIFEST_DIR");
    for name in [
        "stylegan2",
        "stylegan2_diffaug",
        "stylegan2_ada",
        "stylegan2_apa",
        "stylegan2_ada_apa",
        "stylegan2_d2dce",
        "stylegan2_d2dce_ada",
    ] {
        let config = format!("{root}/configs/stylegan2/{name}.ron");
        p.write(
            "p.ron",
            &PIPELINE
                .replace(
                    r#"Include("configs/model.ron")"#,
                    &format!(r#"Include(file: "{config}", at: "model")"#),
                )
                .replace(
                    r#"Include("configs/train.ron")"#,
                    &format!(r#"Include(file: "{config}", at: "train")"#),
                )
                .replace(
                    "Sample(model: \"gan\",",
                    "Sample(model: \"gan\", generator: Ema,",
                ),
        );
        let sets = [
            "gan.model.num_classes=4",
            "gan.model.z_dim=16",
            "gan.model.hyper_dim=8",
            "gan.model.stylegan2=Some((resolution: 32, w_dim: 8, mapping_network: 2, \
             channel_base: 64, channel_max: 8, d_architecture: Orig, \
             d_epilogue_mbstd_group_size: 2))",
            "gan.train.batch_size=4",
            "gan.train.total_steps=2",
            "gan.train.stylegan2=Some((g_reg_interval: 1, d_reg_interval: 1, \
             g_ema_kimg: Some(0.01), g_ema_rampup: Some(0.05), pl_weight: Some(2.0)))",
        ];
        let report = p.run("p.ron", &with_sets(&[], &sets), 0);
        let ran = with_action(&report, "ran");
        assert!(
            ran.ends_with(&["gan".into(), "samples".into()]),
            "{name}: {report}"
        );
        let mut show = vec!["show", "p.ron", "gan"];
        show.extend(with_sets(&[], &sets));
        let show = p.json(&show, 0);
        let metrics = &show["record"]["metrics"];
        for loss in ["d_loss", "g_loss"] {
            assert!(
                metrics[loss].as_f64().unwrap().is_finite(),
                "{name}: {metrics}"
            );
        }
        // ADA's and APA's p is a metric of the runs that have it.
        let adaptive = name.contains("_ada") || name.contains("_apa");
        assert_eq!(
            metrics["aug_p"].as_f64().is_some(),
            adaptive,
            "{name}: {metrics}"
        );
        let refused = [
            (
                "gan.train.stylegan2=None",
                "a Stylegan2 model trains with its section",
            ),
            (
                "gan.model.d_spectral_norm=true",
                "Stylegan2 does not use `d_spectral_norm`",
            ),
            (
                "gan.train.ema=Some((decay: 0.999, start: 0))",
                "StyleGAN2's EMA is set by",
            ),
            (
                "gan.train.batch_size=5",
                "D's minibatch standard deviation takes groups of 2",
            ),
            (
                "samples.truncation=2.0",
                "StyleGAN2 moves w toward its average by ψ in (0, 1]",
            ),
        ];
        for (set, message) in refused {
            let mut args = with_sets(&["run", "p.ron"], &sets);
            args.extend(["--set", set]);
            let out = p.pipe(&args);
            assert_eq!(out.status.code(), Some(1), "{set}");
            // A refused configuration is named on stderr; a failed stage in its report.
            let said = text(&out.stderr) + &text(&out.stdout);
            assert!(said.contains(message), "{set}: {said}");
        }
    }
}

/// `head` followed by `--set` and each of `sets`.
fn with_sets<'a>(head: &[&'a str], sets: &[&'a str]) -> Vec<&'a str> {
    let mut args = head.to_vec();
    for set in sets {
        args.extend(["--set", set]);
    }
    args
}

/// A LOGAN run's samples move z along D's gradient, as the seed's evaluation does.
#[test]
fn samples_of_a_logan_run_move_z_with_its_d() {
    let p = project();
    let args = [
        "samples",
        "--set",
        "gan.model.conditioning=Projection",
        "--set",
        "gan.train.latent_op=Some((rate: 0.8, alpha: 0.9, beta: 0.1))",
    ];
    let report = p.run("p.ron", &args, 0);
    assert_eq!(with_action(&report, "ran"), ["shapes", "gan", "samples"]);
    let mut show = vec!["show", "p.ron"];
    show.extend(args);
    let summary = p.json(&show, 0)["record"]["summary"].to_string();
    assert!(
        summary.contains("z moved as LOGAN's evaluation moves it"),
        "{summary}"
    );
    let plain = p.run(
        "p.ron",
        &["samples", "--set", "gan.model.conditioning=Projection"],
        0,
    );
    let summary = p.json(
        &[
            "show",
            "p.ron",
            "samples",
            "--set",
            "gan.model.conditioning=Projection",
        ],
        0,
    )["record"]["summary"]
        .to_string();
    assert!(!summary.contains("z moved"), "{plain}: {summary}");
}

fn error_for(p: &Project) -> String {
    let out = p.pipe(&["run", "p.ron"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn a_penalty_weight_that_is_not_positive_is_refused_where_it_is_written() {
    let p = project();
    p.write(
        "configs/train.ron",
        &TRAIN.replace(
            "adv_loss: Hinge,",
            "adv_loss: Wasserstein,\n    gradient_penalty: Some(0.0),",
        ),
    );
    let err = error_for(&p);
    assert!(err.contains("0 must be a positive weight"), "{err}");
    assert!(err.contains("configs/train.ron:10:"), "{err}");
}

#[test]
fn a_latent_step_out_of_range_is_refused_where_it_is_written() {
    let p = project();
    p.write(
        "configs/train.ron",
        &TRAIN.replace(
            "adv_loss: Hinge,",
            "adv_loss: Hinge,\n    latent_op: Some((rate: 1.5, alpha: 0.9, beta: 0.1)),",
        ),
    );
    let err = error_for(&p);
    assert!(err.contains("rate 1.5 is not in (0, 1]"), "{err}");
    assert!(err.contains("configs/train.ron:10:"), "{err}");
}

/// A field the architecture ignores would change the key and retrain the same network:
/// refused at the field, with what the architecture does instead.
#[test]
fn a_field_the_architecture_ignores_is_refused_where_it_is_written() {
    let p = project();
    for (architecture, message) in [
        (
            "Dcgan32",
            "Dcgan32 does not use `g_conv_dim` (its widths are fixed: 512/256/128 in G, 64/128/256 in D); leave it out",
        ),
        (
            "Resgan32",
            "Resgan32 does not use `shared_dim` (only BigGAN's generators have a shared class embedding); leave it out",
        ),
    ] {
        let model = MODEL.replace("Biggan32", architecture).replace(
            "    attention: Some((g_after_block: 2, d_after_block: 1)),\n",
            "",
        );
        p.write("configs/model.ron", &model);
        let err = error_for(&p);
        assert!(err.contains(message), "{architecture}: {err}");
        let line = if architecture == "Dcgan32" { 7 } else { 6 };
        assert!(
            err.contains(&format!("configs/model.ron:{line}:")),
            "{architecture}: {err}"
        );
    }
    // Left out, they take their defaults: the network trains.
    let model = MODEL
        .replace("Biggan32", "Dcgan32")
        .replace(
            "    shared_dim: 8,\n    g_conv_dim: 4,\n    d_conv_dim: 4,\n",
            "",
        )
        .replace(
            "    attention: Some((g_after_block: 2, d_after_block: 1)),\n",
            "",
        );
    p.write("configs/model.ron", &model);
    assert_eq!(stage(&p.run("p.ron", &["gan"], 0), "gan")["action"], "ran");
}

#[test]
fn zero_steps_need_networks_to_start_from() {
    let p = project();
    p.write(
        "configs/train.ron",
        &TRAIN.replace("total_steps: 3", "total_steps: 0"),
    );
    let err = error_for(&p);
    assert!(err.contains("0 steps only with `init`"), "{err}");
}

#[test]
fn a_z_dim_biggan_cannot_split_points_into_the_model_config() {
    let p = project();
    p.write(
        "configs/model.ron",
        &MODEL.replace("z_dim: 20", "z_dim: 21"),
    );
    let err = error_for(&p);
    assert!(err.contains("z_dim 21 is not a multiple of 4"), "{err}");
    assert!(err.contains("configs/model.ron:5:"), "{err}");
}

/// The model configuration, in RON, of a fixture case of `studiogan/cases.json`.
fn case_model(case: &str, c: &serde_json::Value) -> String {
    let text = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{case}: no `{k}`"));
    let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{case}: no `{k}`"));
    let architecture = Architecture::from_reference_name(text("architecture"))
        .unwrap_or_else(|| panic!("{case}: unknown architecture {}", text("architecture")));
    let conditioning = match text("conditioning") {
        "contra" => "Contrastive",
        "proj" => "Projection",
        "ac" => "Acgan",
        "no" | "none" => "None",
        other => panic!("{case}: unknown conditioning {other}"),
    };
    let attention = if c["attention"].as_bool().unwrap_or(false) {
        format!(
            "Some((g_after_block: {}, d_after_block: {}))",
            num("at_after_th_gen_block"),
            num("at_after_th_dis_block")
        )
    } else {
        "None".into()
    };
    let mut ron = format!(
        "(\n    architecture: {architecture:?},\n    conditioning: {conditioning},\n    num_classes: {},\n    z_dim: {},\n    attention: {attention},\n",
        num("num_classes"),
        num("z_dim"),
    );
    // Fields the architecture ignores are refused: the authors' dcgan32 configs write
    // "N/A" for its fixed widths, and only BigGAN has a shared embedding.
    if !architecture.fixed_widths() {
        for width in ["g_conv_dim", "d_conv_dim"] {
            ron.push_str(&format!("    {width}: {},\n", num(width)));
        }
    }
    for flag in [
        "g_spectral_norm",
        "d_spectral_norm",
        "nonlinear_embed",
        "normalize_embed",
        "leaky_relu",
    ] {
        if let Some(value) = c[flag].as_bool() {
            ron.push_str(&format!("    {flag}: {value},\n"));
        }
    }
    for size in ["shared_dim", "hyper_dim"] {
        if size == "shared_dim" && !architecture.shares_embedding() {
            continue;
        }
        if let Some(value) = c[size].as_u64() {
            ron.push_str(&format!("    {size}: {value},\n"));
        }
    }
    ron + ")\n"
}

#[test]
fn training_goes_on_from_the_authors_checkpoints() {
    let fixtures = fixtures("studiogan");
    let cases: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("cases.json")).unwrap())
            .unwrap();
    assert!(!cases.is_empty(), "no case in {}", fixtures.display());
    for (case, c) in &cases {
        let find = |net: &str| {
            let prefix = format!("{case}_model={net}-");
            std::fs::read_dir(&fixtures)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.starts_with(&prefix) && name.ends_with(".pth")
                })
                .unwrap_or_else(|| panic!("{case}: no {prefix}*.pth in {}", fixtures.display()))
        };
        let (g, d) = (find("G"), find("D"));
        let p = Project::new();
        let model = case_model(case, c);
        let (classes, size) = (
            c["num_classes"].as_u64().unwrap(),
            c["img_size"].as_u64().unwrap(),
        );
        // One folder per class (any number of them), enough images for a batch of 4.
        let per_class = 4u64.div_ceil(classes);
        for k in 0..classes {
            for i in 0..per_class {
                let path = p.path(&format!("images/c{k:03}/{i}.png"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let pixel = image::Rgb([(k * 37 % 256) as u8, (i * 90 % 256) as u8, 128]);
                image::RgbImage::from_pixel(size as u32, size as u32, pixel)
                    .save(&path)
                    .unwrap();
            }
        }
        p.write("configs/model.ron", &model).write(
            "configs/train.ron",
            &TRAIN.replace("total_steps: 3", "total_steps: 1"),
        );
        p.write(
            "p.ron",
            &format!(
                r#"Pipeline(name: "t", stages: {{
                    "shapes": Dataset(source: ImageFolder(path: "images"), split: Train),
                    "gan": Train(data: "shapes", model: Include("configs/model.ron"),
                                 train: Include("configs/train.ron"), device: Cpu,
                                 init: Some((g: "{g}", d: "{d}"))),
                    // The authors' networks as they are, sampled.
                    "as_is": Train(data: "shapes", model: Include("configs/model.ron"),
                                   train: Include(file: "configs/train.ron", set: {{"total_steps": 0}}),
                                   device: Cpu, init: Some((g: "{g}", d: "{d}"))),
                    "samples": Sample(model: "as_is", count: 4, generator: Raw),
                }})"#,
                g = g.display(),
                d = d.display()
            ),
        );
        let report = p.run("p.ron", &[], 0);
        assert_eq!(stage(&report, "gan")["action"], "ran", "{case}");
        assert_eq!(
            stage(&report, "samples")["metrics"]["images"],
            4.0,
            "{case}"
        );
        let imported = stage(&report, "as_is")["output"].as_str().unwrap();
        let snapshot =
            Snapshot::load(&std::path::Path::new(imported).join("G.safetensors")).unwrap();
        assert_eq!(snapshot.metadata["step"], "0", "{case}");
        let show = p.json(&["show", "p.ron", "gan"], 0);
        let architecture =
            Architecture::from_reference_name(c["architecture"].as_str().unwrap()).unwrap();
        // The authors' BigGAN generators hold their class embedding even unconditional,
        // unused: it is left out of ours, and the summary says so.
        let unconditional = matches!(c["conditioning"].as_str(), Some("no" | "none"));
        let unused = match architecture.shares_embedding() && unconditional {
            true => c["num_classes"].as_f64().unwrap() * c["shared_dim"].as_f64().unwrap_or(128.0),
            false => 0.0,
        };
        let summary = show["record"]["summary"].as_str().unwrap();
        assert_eq!(
            summary.contains("`shared.weight` of init_g"),
            unused > 0.0,
            "{case}: {summary}"
        );
        for (metric, count, unused) in [
            ("g_params", "g_params", unused),
            ("d_params", "d_params", 0.0),
        ] {
            if let Some(expected) = c[count].as_f64() {
                assert_eq!(
                    show["record"]["metrics"][metric],
                    expected - unused,
                    "{case}: {metric}"
                );
            }
        }

        // A config that does not match the checkpoint is named with the mismatch: D's
        // width, or where the widths are fixed, G's z.
        let (field, value, checkpoint) = match architecture.fixed_widths() {
            false => ("d_conv_dim", c["d_conv_dim"].as_u64().unwrap(), &d),
            true => ("z_dim", c["z_dim"].as_u64().unwrap(), &g),
        };
        let changed = if field == "z_dim" {
            value * 2
        } else {
            value / 2
        };
        p.write(
            "configs/model.ron",
            &model.replace(
                &format!("{field}: {value},"),
                &format!("{field}: {changed},"),
            ),
        );
        let out = p.pipe(&["run", "p.ron"]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        let err = text(&out.stderr) + &text(&out.stdout);
        let file = checkpoint
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            err.contains(&format!("{file}: tensor `")) && err.contains("the network needs ["),
            "{case}: {err}"
        );
    }
}

/// The short run's pipeline with a labelled test set (`test`), the FID Inception weights
/// (`inception`) and `stages` (RON lines of the `stages` map) added.
fn with_test_set(stages: &str) -> String {
    PIPELINE.replace(
        "    },\n)",
        &format!(
            r#"        "test": Dataset(source: Synthetic(seed: 2, per_class: 3, size: 32, classes: 4), split: Test),
        "inception": Weights(path: Some("{}")),
{stages}    }},
)"#,
            inception_weights().display()
        ),
    )
}

#[test]
fn samples_are_scored_against_reference_statistics() {
    let p = project();
    let pipeline = with_test_set(
        r#"        "test_stats": InceptionStats(data: "test", weights: "inception", features: true, device: Cpu),
        "score": Score(samples: "samples", reference: "test_stats", weights: "inception", kid: true, prdc: true, device: Cpu),
"#,
    );
    p.write("p.ron", &pipeline);
    let report = p.run("p.ron", &["score"], 0);
    assert_eq!(stage(&report, "score")["action"], "ran");
    let show = p.json(&["show", "p.ron", "score"], 0);
    let metrics = &show["record"]["metrics"];
    for key in [
        "fid",
        "is_mean",
        "is_std",
        "kid_mean",
        "precision",
        "recall",
        "density",
        "coverage",
    ] {
        assert!(
            metrics[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {show}"
        );
    }
    assert_eq!(metrics["images"], 10.0);
    assert!(metrics["fid"].as_f64().unwrap() > 0.0);

    // Sampling inside Score, as Sample does (same seed and batches), gives the same FID.
    let inline = pipeline.replace(
        "    },\n)",
        r#"        "inline": Score(samples: "gan", count: 10, seed: 1, batch: 4, reference: "test_stats", weights: "inception", device: Cpu),
    },
)"#,
    );
    p.write("p.ron", &inline);
    let report = p.run("p.ron", &["inline"], 0);
    let inline_metrics = &stage(&report, "inline")["metrics"];
    let (a, b) = (
        inline_metrics["fid"].as_f64().unwrap(),
        metrics["fid"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * b, "inline {a}, from samples {b}");
    assert_eq!(inline_metrics["images"], 10.0);
    p.write(
        "p.ron",
        &inline.replace("count: 10, seed: 1, ", "seed: 1, "),
    );
    let out = p.pipe(&["run", "p.ron", "inline"]);
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("`gan` is a Train stage: to sample from it here, set `count`"),
        "{err}"
    );

    // Without the reference's features, KID cannot be computed, and the error says why.
    p.write("p.ron", &pipeline.replace("features: true, ", ""));
    let out = p.pipe(&["run", "p.ron", "score"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("set `features: true` on the InceptionStats stage `test_stats`"),
        "{err}"
    );
}

#[test]
fn intra_class_fid_the_clean_resizer_and_protocols_through_score_and_report() {
    let p = project();
    let pipeline = with_test_set(
        r#"        "stats_legacy": InceptionStats(data: "test", weights: "inception", features: true, device: Cpu),
        "stats_clean": InceptionStats(data: "test", weights: "inception", features: true, resizer: Clean, device: Cpu),
        "score_legacy": Score(samples: "gan", count: 24, seed: 1, batch: 8, reference: "stats_legacy", weights: "inception", intra_class: true, device: Cpu),
        "score_clean": Score(samples: "gan", count: 24, seed: 1, batch: 8, reference: "stats_clean", weights: "inception", device: Cpu),
        "table": Report(title: "t", tables: [(title: "FID", stages: "score_*", metrics: ["fid"])]),
"#,
    );
    p.write("p.ron", &pipeline);
    let report = p.run("p.ron", &["table"], 0);
    let metrics = |name: &str| stage(&report, name)["metrics"].clone();
    let legacy = metrics("score_legacy");
    let ifid = legacy["ifid"].as_f64().unwrap();
    assert!(ifid.is_finite() && ifid > 0.0, "{legacy}");
    let out = PathBuf::from(stage(&report, "score_legacy")["output"].as_str().unwrap());
    let scores: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("scores.json")).unwrap()).unwrap();
    let per_class = scores["ifid_per_class"].as_object().unwrap();
    assert_eq!(per_class.len(), 4, "{scores}");
    let mean = per_class
        .values()
        .map(|c| c["fid"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    assert!((mean - ifid).abs() <= 1e-9 * ifid, "{mean} vs {ifid}");
    // Sampled here, as v0.4's iFID: each class as many images as the reference has.
    assert!(
        per_class
            .values()
            .all(|c| c["real"] == 3 && c["generated"] == 3),
        "{scores}"
    );
    assert_eq!(
        scores["ifid_images"],
        "per class as many as the reference has"
    );

    // The same images resized the other way measure differently, and each score
    // records the resizer of its reference.
    let clean = metrics("score_clean");
    assert_ne!(clean["fid"], legacy["fid"]);
    let protocol = |name: &str| p.json(&["show", "p.ron", name], 0)["record"]["protocol"].clone();
    assert_eq!(protocol("stats_clean")["resizer"], "Clean");
    let legacy_protocol = protocol("score_legacy");
    assert_eq!(legacy_protocol["resizer"], "Legacy", "{legacy_protocol}");
    assert_eq!(legacy_protocol["images"], "24");
    assert_eq!(legacy_protocol["reference images"], "12");
    assert_eq!(legacy_protocol["generator"], "Ema");

    assert_eq!(protocol("score_clean")["resizer"], "Clean");

    // A table of both is marked, naming the difference; the facts they share are said.
    let table = PathBuf::from(stage(&report, "table")["output"].as_str().unwrap());
    let markdown = std::fs::read_to_string(table.join("report.md")).unwrap();
    assert!(
        markdown.contains(
            "Warning: cells of this table were measured under different protocols: \
             resizer differs: Clean (score_clean) vs Legacy (score_legacy)."
        ),
        "{markdown}"
    );
    assert!(markdown.contains("images 24"), "{markdown}");

    // Intra-class FID needs the reference's features.
    p.write(
        "p.ron",
        &pipeline.replace(
            r#""test", weights: "inception", features: true, device"#,
            r#""test", weights: "inception", device"#,
        ),
    );
    let out = p.pipe(&["run", "p.ron", "score_legacy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("intra-class FID need the reference's features: set `features: true` on the InceptionStats stage `stats_legacy`"),
        "{err}"
    );
}
