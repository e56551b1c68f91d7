//! The paper's configurations in configs/ hold the values of its Table 1 and Table 2
//! setups (REFERENCE.md, and the authors' configs/Table1 and Table2 at 67e0de0), checked
//! here against a table written out by hand, through the same loading a pipeline does.

mod common;

use std::path::Path;

use serde_json::Value;

/// name, architecture, conditioning, classes, z, G/D widths, SN in G, attention (G, D),
/// batch, accumulation, steps, D steps, lr G/D, β1, EMA, hyper_dim.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
    (u64, u64),
    bool,
    Option<(u64, u64)>,
    u64,
    u64,
    u64,
    u64,
    (f64, f64),
    f64,
    bool,
    u64,
);

#[rustfmt::skip]
const PAPER: [Row; 19] = [
    ("table1/ac_dcgan32_cifar", "Dcgan32", "Acgan", 10, 128, (64, 64), false, None, 64, 1, 200_000, 1, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/proj_dcgan32_cifar", "Dcgan32", "Projection", 10, 128, (64, 64), false, None, 64, 1, 200_000, 1, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/contra_dcgan32_cifar", "Dcgan32", "Contrastive", 10, 128, (64, 64), false, None, 64, 1, 200_000, 1, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/ac_resgan32_cifar", "Resgan32", "Acgan", 10, 128, (64, 64), false, None, 64, 1, 100_000, 2, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/proj_resgan32_cifar", "Resgan32", "Projection", 10, 128, (64, 64), false, None, 64, 1, 100_000, 2, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/contra_resgan32_cifar", "Resgan32", "Contrastive", 10, 128, (64, 64), false, None, 64, 1, 100_000, 2, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/ac_biggan32_cifar", "Biggan32", "Acgan", 10, 80, (96, 96), true, Some((2, 1)), 64, 1, 80_000, 5, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/proj_biggan32_cifar", "Biggan32", "Projection", 10, 80, (96, 96), true, Some((2, 1)), 64, 1, 80_000, 5, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/contra_biggan32_cifar", "Biggan32", "Contrastive", 10, 80, (96, 96), true, Some((2, 1)), 64, 1, 80_000, 5, (2e-4, 2e-4), 0.5, true, 512),
    ("table1/ac_biggan64_tiny", "Biggan64", "Acgan", 200, 100, (80, 80), true, Some((3, 1)), 256, 1, 100_000, 1, (1e-4, 4e-4), 0.0, true, 768),
    ("table1/proj_biggan64_tiny", "Biggan64", "Projection", 200, 100, (80, 80), true, Some((3, 1)), 256, 1, 100_000, 1, (1e-4, 4e-4), 0.0, true, 768),
    ("table1/contra_biggan64_tiny", "Biggan64", "Contrastive", 200, 100, (80, 80), true, Some((3, 1)), 256, 1, 100_000, 1, (1e-4, 4e-4), 0.0, true, 768),
    ("table2/sagan32_cifar", "Resgan32", "Projection", 10, 128, (64, 64), true, Some((2, 1)), 64, 1, 200_000, 1, (1e-4, 4e-4), 0.0, false, 512),
    ("table2/sngan64_tiny", "Resgan64", "Projection", 200, 128, (64, 64), false, None, 256, 4, 100_000, 1, (1e-4, 4e-4), 0.0, false, 512),
    ("table2/sagan64_tiny", "Resgan64", "Projection", 200, 128, (64, 64), true, Some((3, 1)), 256, 4, 100_000, 1, (1e-4, 4e-4), 0.0, false, 512),
    ("table2/biggan32_cifar", "Biggan32", "Projection", 10, 80, (96, 96), true, Some((2, 1)), 64, 1, 80_000, 5, (2e-4, 2e-4), 0.5, true, 512),
    ("table2/contragan32_cifar", "Biggan32", "Contrastive", 10, 80, (96, 96), true, Some((2, 1)), 64, 1, 80_000, 5, (2e-4, 2e-4), 0.5, true, 512),
    ("table2/biggan64_tiny", "Biggan64", "Projection", 200, 100, (80, 80), true, Some((3, 1)), 256, 4, 100_000, 1, (1e-4, 4e-4), 0.0, true, 768),
    ("table2/contragan64_tiny", "Biggan64", "Contrastive", 200, 100, (80, 80), true, Some((3, 1)), 256, 4, 100_000, 1, (1e-4, 4e-4), 0.0, true, 768),
];

/// The canonical `Train` parameters a pipeline gets from `configs/NAME.ron`.
/// Every field of the object `want` has its value in `part` (`model` or `train` of
/// config `name`); a field absent from the canonical parameters reads as `null`.
fn assert_fields(name: &str, what: &str, part: &Value, want: Value) {
    for (key, want) in want.as_object().expect("an object of fields") {
        let got = part.get(key).unwrap_or(&Value::Null);
        assert_eq!(got, want, "{name}: {what}.{key}");
    }
}

/// How many configurations `configs/<table>/` holds.
fn config_files(table: &str) -> usize {
    std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(table),
    )
    .unwrap()
    .count()
}

fn train_params(name: &str, dir: &Path) -> Value {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("configs/{name}.ron"));
    let config = config.display();
    let file = dir.join(format!("{}.ron", name.replace('/', "_")));
    std::fs::write(
        &file,
        format!(
            r#"Pipeline(name: "configs", stages: {{
                "data": Dataset(source: Synthetic(per_class: 1), split: Train),
                "train": Train(
                    data: "data",
                    model: Include(file: "{config}", at: "model"),
                    train: Include(file: "{config}", at: "train"),
                ),
            }})"#
        ),
    )
    .unwrap();
    let pipeline = pipe::pipeline::Pipeline::load(&file, &common::registry())
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let stage = pipeline.stages.iter().find(|s| s.name == "train").unwrap();
    stage.params.value()
}

#[test]
fn every_config_of_tables_1_and_2_holds_the_papers_values() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        (config_files("table1"), config_files("table2")),
        (12, 7),
        "one file per config"
    );
    for (
        name,
        arch,
        cond,
        classes,
        z,
        (gw, dw),
        g_sn,
        attention,
        batch,
        accum,
        steps,
        d_steps,
        (g_lr, d_lr),
        beta1,
        ema,
        hyper,
    ) in PAPER
    {
        let p = train_params(name, dir.path());
        let (m, t) = (&p["model"], &p["train"]);
        let check = |what: &str, got: &Value, want: Value| {
            assert_eq!(*got, want, "{name}: {what}");
        };
        check("architecture", &m["architecture"], arch.into());
        check("conditioning", &m["conditioning"], cond.into());
        check("num_classes", &m["num_classes"], classes.into());
        check("z_dim", &m["z_dim"], z.into());
        check("g_conv_dim", &m["g_conv_dim"], gw.into());
        check("d_conv_dim", &m["d_conv_dim"], dw.into());
        check("g_spectral_norm", &m["g_spectral_norm"], g_sn.into());
        check("d_spectral_norm", &m["d_spectral_norm"], true.into());
        check("g_init", &m["g_init"], "Ortho".into());
        check("d_init", &m["d_init"], "Ortho".into());
        check("hyper_dim", &m["hyper_dim"], hyper.into());
        let attention = attention.map_or(
            Value::Null,
            |(g, d)| serde_json::json!({"g_after_block": g, "d_after_block": d}),
        );
        check("attention", &m["attention"], attention);
        if arch.starts_with("Biggan") {
            check("shared_dim", &m["shared_dim"], 128.into());
        }
        check("batch_size", &t["batch_size"], batch.into());
        check("accumulation_steps", &t["accumulation_steps"], accum.into());
        check("total_steps", &t["total_steps"], steps.into());
        check("d_steps_per_iter", &t["d_steps_per_iter"], d_steps.into());
        check("g_steps_per_iter", &t["g_steps_per_iter"], 1.into());
        check("g_lr", &t["g_lr"], g_lr.into());
        check("d_lr", &t["d_lr"], d_lr.into());
        check("beta1", &t["beta1"], beta1.into());
        check("beta2", &t["beta2"], 0.999.into());
        check("adv_loss", &t["adv_loss"], "Hinge".into());
        check("temperature", &t["temperature"], 1.0.into());
        check("contrastive_lambda", &t["contrastive_lambda"], 1.0.into());
        check("flip", &t["flip"], true.into());
        let want_ema = if ema {
            serde_json::json!({"decay": 0.9999, "start": 20000})
        } else {
            Value::Null
        };
        check("ema", &t["ema"], want_ema);
        if cond == "Contrastive" {
            check("normalize_embed", &m["normalize_embed"], true.into());
        }
    }
}

/// Table 3's ablations (configs/Table3/experiment_{D,F,I}.json at 67e0de0): the Tiny
/// ImageNet BigGAN setup of Table 2's ContraGAN, with the method each one tests.
#[test]
fn every_config_of_table_3_holds_the_seeds_values() {
    let dir = tempfile::tempdir().unwrap();
    // name, conditioning, consistency_reg (with λ 10), make_positive_aug.
    let rows = [
        ("table3/experiment_D", "Projection", true, false),
        ("table3/experiment_F", "Contrastive", false, true),
        ("table3/experiment_I", "Contrastive", true, false),
    ];
    let files = config_files("table3");
    assert_eq!(files, rows.len(), "one file per config");
    for (name, cond, cr, positives) in rows {
        let p = train_params(name, dir.path());
        let (m, t) = (&p["model"], &p["train"]);
        assert_fields(
            name,
            "model",
            m,
            serde_json::json!({
                "architecture": "Biggan64", "conditioning": cond, "num_classes": 200,
                "z_dim": 100, "g_conv_dim": 80, "d_conv_dim": 80, "hyper_dim": 768,
            }),
        );
        assert_fields(
            name,
            "train",
            t,
            serde_json::json!({
                "batch_size": 256, "accumulation_steps": 4, "total_steps": 100_000,
                "d_steps_per_iter": 1, "g_lr": 1e-4, "d_lr": 4e-4, "beta1": 0.0,
                "ema": {"decay": 0.9999, "start": 20000},
            }),
        );
        // Defaulted fields are left out of the canonical parameters.
        let flag = |v: &Value| v.as_bool().unwrap_or(false);
        assert_eq!(flag(&t["consistency_reg"]), cr, "{name}: consistency_reg");
        assert_eq!(
            flag(&t["make_positive_aug"]),
            positives,
            "{name}: make_positive_aug"
        );
        if cr {
            let lambda = t
                .get("consistency_lambda")
                .and_then(Value::as_f64)
                .unwrap_or(10.0);
            assert_eq!(lambda, 10.0, "{name}: consistency_lambda");
        }
    }
}

/// The v0.4 methods of `pipelines/extended.ron` (StudioGAN's src/configs/CIFAR10/*.yaml
/// at its HEAD) on the seed's BigGAN32.
#[test]
fn every_extended_config_holds_studiogan_v04s_values() {
    let dir = tempfile::tempdir().unwrap();
    let lecam = serde_json::json!({"lambda": 0.3, "ema_start_iter": 1000, "ema_decay": 0.99});
    // name, conditioning, batch, lr, steps, DiffAugment, LeCam, cond_lambda, temperature.
    let rows = [
        (
            "extended/biggan_diffaug_lecam",
            "Projection",
            64,
            2e-4,
            200_000,
            true,
            lecam.clone(),
            1.0,
            1.0,
        ),
        (
            "extended/contragan_adc",
            "Contrastive",
            64,
            2e-4,
            100_000,
            false,
            Value::Null,
            1.0,
            1.0,
        ),
        (
            "extended/contragan_diffaug",
            "Contrastive",
            64,
            2e-4,
            200_000,
            true,
            Value::Null,
            1.0,
            1.0,
        ),
        (
            "extended/reacgan",
            "D2DCE",
            128,
            2.8284271e-4,
            100_000,
            false,
            Value::Null,
            0.5,
            0.5,
        ),
        (
            "extended/reacgan_adc",
            "D2DCE",
            128,
            2.8284271e-4,
            100_000,
            false,
            Value::Null,
            0.5,
            0.5,
        ),
        (
            "extended/reacgan_diffaug",
            "D2DCE",
            128,
            2.8284271e-4,
            200_000,
            true,
            Value::Null,
            0.5,
            0.5,
        ),
        (
            "extended/reacgan_lecam",
            "D2DCE",
            128,
            2.8284271e-4,
            200_000,
            false,
            lecam,
            0.5,
            0.5,
        ),
    ];
    let files = config_files("extended");
    assert_eq!(files, rows.len(), "one file per config");
    for (name, cond, batch, lr, steps, diffaug, lecam, lambda, temperature) in rows {
        let p = train_params(name, dir.path());
        let (m, t) = (&p["model"], &p["train"]);
        let adc = name.ends_with("_adc");
        assert_fields(
            name,
            "model",
            m,
            serde_json::json!({
                "architecture": "Biggan32", "conditioning": cond, "z_dim": 80,
                "g_conv_dim": 96, "d_conv_dim": 96, "hyper_dim": 512,
                "aux_cls_type": if adc { "ADC".into() } else { Value::Null },
            }),
        );
        assert_fields(
            name,
            "train",
            t,
            serde_json::json!({
                "batch_size": batch, "g_lr": lr, "d_lr": lr, "total_steps": steps,
                "d_steps_per_iter": 5, "beta1": 0.5, "ema": {"decay": 0.9999, "start": 1000},
                "lecam": lecam, "contrastive_lambda": lambda, "temperature": temperature,
            }),
        );
        assert_eq!(
            t["apply_diffaug"].as_bool().unwrap_or(false),
            diffaug,
            "{name}: apply_diffaug"
        );
        if cond == "D2DCE" {
            let m_p = t.get("m_p").and_then(Value::as_f64).unwrap_or(0.98);
            assert_eq!(m_p, 0.98, "{name}: m_p");
        }
    }
}

/// The Wasserstein GANs with a gradient penalty of `pipelines/wgan.ron`, and the
/// penalty's field.
const WGANS: [(&str, &str); 2] = [
    ("wgan/wgan_gp", "gradient_penalty"),
    ("wgan/wgan_dra", "dra_lambda"),
];

/// The fields of a StudioGAN v0.4 CIFAR-10 configuration on the seed's resgan32 with
/// v0.4's config.py defaults (unconditional; batch 64, Adam 2e-4, 5 D steps, 100,000
/// steps, no EMA): (model, train).
fn v04_resgan32(d_spectral_norm: bool, adv_loss: &str) -> (Value, Value) {
    (
        serde_json::json!({
            "architecture": "Resgan32", "conditioning": "None", "z_dim": 128,
            "g_conv_dim": 64, "d_conv_dim": 64, "g_spectral_norm": false,
            "d_spectral_norm": d_spectral_norm, "g_init": "Ortho", "d_init": "Ortho",
            "attention": Value::Null,
        }),
        serde_json::json!({
            "adv_loss": adv_loss, "batch_size": 64, "g_lr": 2e-4, "d_lr": 2e-4,
            "beta1": 0.5, "beta2": 0.999, "d_steps_per_iter": 5, "g_steps_per_iter": 1,
            "total_steps": 100_000, "ema": Value::Null, "accumulation_steps": 1,
        }),
    )
}

/// StudioGAN v0.4's WGAN-GP.yaml and WGAN-DRA.yaml with its config.py's defaults, on the
/// seed's resgan32.
#[test]
fn every_wgan_config_holds_studiogan_v04s_values() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(config_files("wgan"), WGANS.len(), "one file per config");
    for (name, penalty) in WGANS {
        let p = train_params(name, dir.path());
        let (model, mut train) = v04_resgan32(false, "Wasserstein");
        for field in ["gradient_penalty", "dra_lambda", "maxgp_lambda"] {
            train[field] = if field == penalty {
                10.0.into()
            } else {
                Value::Null
            };
        }
        assert_fields(name, "model", &p["model"], model);
        assert_fields(name, "train", &p["train"], train);
    }
}

/// LOGAN as v0.4's CIFAR10/LOGAN.yaml sets it (with its config.py's defaults, on the
/// seed's resgan32), and the same GAN without it.
#[test]
fn the_logan_configs_hold_studiogan_v04s_values() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("logan/baseline", Value::Null),
        (
            "logan/logan",
            serde_json::json!({"rate": 0.8, "alpha": 0.9, "beta": 0.1, "norm_reg_weight": 0.1}),
        ),
    ];
    assert_eq!(config_files("logan"), rows.len(), "one file per config");
    for (name, latent_op) in rows {
        let p = train_params(name, dir.path());
        let (model, mut train) = v04_resgan32(true, "Hinge");
        train["latent_op"] = latent_op;
        assert_fields(name, "model", &p["model"], model);
        assert_fields(name, "train", &p["train"], train);
    }
}

/// The ImageNet 128×128 configurations (configs/Imagenet_experiments/*.json at
/// 67e0de0).
#[test]
fn every_imagenet_config_holds_the_seeds_values() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("imagenet/contra_biggan128", "Contrastive"),
        ("imagenet/proj_biggan128", "Projection"),
    ];
    let files = config_files("imagenet");
    assert_eq!(files, rows.len(), "one file per config");
    for (name, cond) in rows {
        let p = train_params(name, dir.path());
        let (m, t) = (&p["model"], &p["train"]);
        assert_fields(
            name,
            "model",
            m,
            serde_json::json!({
                "architecture": "Biggan128", "conditioning": cond, "num_classes": 1000,
                "z_dim": 120, "shared_dim": 128, "g_conv_dim": 96, "d_conv_dim": 96,
                "hyper_dim": 768, "g_spectral_norm": true, "d_spectral_norm": true,
                "attention": {"g_after_block": 4, "d_after_block": 1},
                "g_init": "Ortho", "d_init": "Ortho", "leaky_relu": false,
            }),
        );
        assert_fields(
            name,
            "train",
            t,
            serde_json::json!({
                "batch_size": 256, "accumulation_steps": 8, "total_steps": 200000,
                "d_steps_per_iter": 2, "g_lr": 0.00005, "d_lr": 0.0002, "beta1": 0.0,
                "beta2": 0.999, "adv_loss": "Hinge", "temperature": 1.0,
                "contrastive_lambda": 1.0, "ema": {"decay": 0.9999, "start": 20000},
            }),
        );
    }
}

/// configs/stylegan2/ against v0.4's src/configs/CIFAR10/StyleGAN2*.yaml (and the
/// widths its models/model.py picks for CIFAR-10); its ContraGAN and ReACGAN are the
/// configurations they name, unchanged.
#[test]
fn every_stylegan2_config_holds_studiogan_v04s_values() {
    let dir = tempfile::tempdir().unwrap();
    let style = serde_json::json!({
        "resolution": 32, "w_dim": 512, "mapping_network": 2, "channel_base": 32768,
        "channel_max": 512, "d_architecture": "Orig", "d_epilogue_mbstd_group_size": 32,
        "style_mixing_p": 0.0,
    });
    let lazy = serde_json::json!({
        "g_reg_interval": 4, "d_reg_interval": 16, "g_ema_kimg": 500.0, "g_ema_rampup": 0.05,
    });
    let p = |target: f64| serde_json::json!({"initial_p": 0.0, "target": target, "kimg": 500.0, "interval": 4});
    let ada = |target: f64| serde_json::json!({"pipeline": "Bgc", "p": p(target)});
    let null = Value::Null;
    // name, conditioning, D steps, cond_lambda, temperature, steps, DiffAugment, APA, ADA.
    #[rustfmt::skip]
    let rows = [
        ("stylegan2/stylegan2", "Projection", 1, 1.0, 1.0, 200_000, false, null.clone(), null.clone()),
        ("stylegan2/stylegan2_diffaug", "Projection", 1, 1.0, 1.0, 1_000_000, true, null.clone(), null.clone()),
        ("stylegan2/stylegan2_apa", "Projection", 1, 1.0, 1.0, 1_000_000, false, p(0.6), null.clone()),
        ("stylegan2/stylegan2_ada", "Projection", 1, 1.0, 1.0, 1_000_000, false, null.clone(), ada(0.6)),
        ("stylegan2/stylegan2_ada_apa", "Projection", 1, 1.0, 1.0, 1_000_000, false, p(0.6), ada(0.6)),
        ("stylegan2/stylegan2_d2dce", "D2DCE", 2, 0.25, 0.25, 200_000, false, null.clone(), null.clone()),
        ("stylegan2/stylegan2_d2dce_ada", "D2DCE", 2, 0.25, 0.25, 1_000_000, false, null.clone(), ada(0.8)),
    ];
    let configs = rows.len();
    for (name, cond, d_steps, lambda, temperature, steps, diffaug, apa, ada) in rows {
        let p = train_params(name, dir.path());
        let (m, t) = (&p["model"], &p["train"]);
        assert_fields(
            name,
            "model",
            m,
            serde_json::json!({
                "architecture": "Stylegan2", "conditioning": cond, "num_classes": 10,
                "z_dim": 512, "hyper_dim": 512, "normalize_embed": true,
                "g_spectral_norm": false, "d_spectral_norm": false, "stylegan2": style,
            }),
        );
        assert_fields(
            name,
            "train",
            t,
            serde_json::json!({
                "batch_size": 64, "total_steps": steps, "d_steps_per_iter": d_steps,
                "g_steps_per_iter": 1, "g_lr": 0.0025, "d_lr": 0.0025, "beta1": 0.0,
                "beta2": 0.99, "adam_eps": 1e-8, "adv_loss": "Logistic", "r1_lambda": 0.01,
                "ema": null, "flip": true, "contrastive_lambda": lambda,
                "temperature": temperature, "stylegan2": lazy, "apa": apa, "ada": ada,
            }),
        );
        let m_p = t.get("m_p").and_then(Value::as_f64).unwrap_or(0.98);
        assert_eq!(m_p, 0.98, "{name}: m_p");
        let applied = t["apply_diffaug"].as_bool().unwrap_or(false);
        assert_eq!(applied, diffaug, "{name}: apply_diffaug");
    }
    for (name, original) in [
        ("stylegan2/contragan", "table1/contra_biggan32_cifar"),
        ("stylegan2/reacgan", "extended/reacgan"),
    ] {
        assert_eq!(
            train_params(name, dir.path()),
            train_params(original, dir.path()),
            "{name} is {original}"
        );
    }
    assert_eq!(
        config_files("stylegan2"),
        configs + 2,
        "one file per config"
    );
}
