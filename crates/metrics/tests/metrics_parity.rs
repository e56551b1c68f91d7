//! Every value of `metrics/expected.json` recomputed from the fixture arrays and compared
//! with the reference implementations' (pytorch-fid, torch-fidelity, prdc). A key this
//! test has no rule for fails it, so a richer fixture set cannot pass unchecked.

use std::path::Path;

use metrics::npy;
use metrics::prdc::{Ball, prdc};
use metrics::{Features, Stats, fid::fid, inception_score::inception_score, kid::kid};

fn features(dir: &Path, name: &str) -> Features {
    let a = npy::read(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    let (rows, cols) = a.matrix().expect("2-d array");
    Features::new(rows, cols, a.data)
}

fn close(key: &str, got: f64, expected: f64, relative: f64) -> Option<String> {
    let err = (got - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    println!("{key}: got {got:.12e}, expected {expected:.12e}, relative error {err:.3e}");
    (err > relative)
        .then(|| format!("{key}: {got} vs {expected} (relative error {err:e} > {relative:e})"))
}

#[test]
fn every_expected_metric_matches() {
    let dir = fixtures::dir("metrics");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut cache = std::collections::HashMap::new();
    for (key, value) in &expected {
        let want = value.as_f64().unwrap();
        let failure = if let Some(pair) = key.strip_prefix("fid_") {
            // `fid_<x>_<y>` compares fid_<x>.npz with fid_<y>.npz.
            let split = (1..pair.len())
                .filter(|&i| pair.as_bytes()[i] == b'_')
                .find(|&i| {
                    dir.join(format!("fid_{}.npz", &pair[..i])).exists()
                        && dir.join(format!("fid_{}.npz", &pair[i + 1..])).exists()
                })
                .unwrap_or_else(|| panic!("{key}: no pair of fid_*.npz files"));
            let (x, y) = (&pair[..split], &pair[split + 1..]);
            let load = |n: &str| {
                Stats::read_npz(&dir.join(format!("fid_{n}.npz"))).unwrap_or_else(|e| panic!("{e}"))
            };
            let got = fid(&load(x), &load(y)).unwrap();
            if x == y {
                println!("{key}: got {got:e}");
                (got.abs() >= 1e-6).then(|| format!("{key}: |FID(a, a)| = {got} ≥ 1e-6"))
            } else {
                close(
                    key,
                    got,
                    want,
                    if key.contains("lowrank") { 1e-4 } else { 1e-6 },
                )
            }
        } else if let Some(which) = key.strip_prefix("is_") {
            let (mean, std) = *cache
                .entry("is")
                .or_insert_with(|| inception_score(&features(&dir, "is_logits.npy"), 10).unwrap());
            close(key, if which == "mean" { mean } else { std }, want, 1e-6)
        } else if key == "kid_mean" {
            let (a, b) = (features(&dir, "kid_a.npy"), features(&dir, "kid_b.npy"));
            let n = a.rows.max(b.rows);
            close(key, kid(&a, &b, 1, n, 0).unwrap().0, want, 1e-6)
        } else if let Some(rest) = key
            .strip_prefix("prdc_k")
            .or_else(|| key.strip_prefix("precision_k"))
            .or_else(|| key.strip_prefix("recall_k"))
        {
            let (k, what) = match key.starts_with("prdc") {
                true => rest
                    .split_once('_')
                    .map(|(k, w)| (k.parse::<usize>().unwrap(), w))
                    .unwrap(),
                false => (rest.parse().unwrap(), key.split('_').next().unwrap()),
            };
            let ball = if key.starts_with("prdc") {
                Ball::Open
            } else {
                Ball::Closed
            };
            let result = prdc(
                &features(&dir, "pr_real.npy"),
                &features(&dir, "pr_fake.npy"),
                k,
                ball,
            )
            .unwrap();
            let got = match what {
                "precision" => result.precision,
                "recall" => result.recall,
                "density" => result.density,
                "coverage" => result.coverage,
                other => panic!("{key}: unknown measure {other}"),
            };
            // Ratios of counts; the stored float32 means carry about 1e-8 of rounding.
            ((got - want).abs() > 1e-6).then(|| format!("{key}: {got} vs {want}"))
        } else {
            Some(format!("{key}: no rule to check this key"))
        };
        failures.extend(failure);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stats_files_of_pytorch_fid_read_in_float64() {
    let dir = fixtures::dir("metrics");
    let s = Stats::read_npz(&dir.join("fid_a.npz")).unwrap();
    // The dimension is the length of `mu`, read independently of `Stats`.
    let arrays = npy::read_npz(&dir.join("fid_a.npz")).unwrap();
    let mu = arrays.get("mu").expect("`mu` in fid_a.npz");
    assert_eq!(s.dim(), mu.data.len());
    // Round trip through our writer.
    let tmp = tempfile::tempdir().unwrap();
    s.write_npz(&tmp.path().join("a.npz")).unwrap();
    assert_eq!(Stats::read_npz(&tmp.path().join("a.npz")).unwrap(), s);
}
