//! pytorch-fid parity of the FID Inception network: every image of `images.txt` through
//! our network against `expected.npz` (`pool3`, `logits`, `logits_unbiased`), within
//! 1e-4 × max|expected| per array. Any fixture set of this layout works.

use data::decode_rgb;
use kernels::TestBackend as Backend;
use metrics::inception::{CLASSES, FEATURES, FidInception, images_tensor};
use metrics::npy;

#[test]
fn every_image_matches_pytorch_fid() {
    let dir = fixtures::dir("fid-inception");
    let weights = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pth"))
        .expect("a .pth weight file in the fixture folder");
    let device = Default::default();
    let net = FidInception::<Backend>::load(&weights, &device).unwrap_or_else(|e| panic!("{e}"));
    let bias = net.fc_bias().to_vec();
    let names: Vec<String> = std::fs::read_to_string(dir.join("images.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    let expected = npy::read_npz(&dir.join("expected.npz")).unwrap();
    let get = |k: &str| {
        expected
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in expected.npz"))
    };
    let (mut pool3, mut logits, mut unbiased) = (Vec::new(), Vec::new(), Vec::new());
    for name in &names {
        let path = if dir.join(name).exists() {
            dir.join(name)
        } else {
            dir.join("images").join(name)
        };
        let (w, h, pixels) = decode_rgb(&std::fs::read(&path).unwrap(), None).unwrap();
        let out = net
            .forward(images_tensor(&pixels, 1, h as usize, w as usize, &device))
            .unwrap();
        pool3.extend(out.pool3.iter().map(|&v| v as f64));
        logits.extend(out.logits.iter().map(|&v| v as f64));
        unbiased.extend(
            out.logits
                .iter()
                .zip(bias.iter().cycle())
                .map(|(&l, &b)| l as f64 - b),
        );
    }
    let mut failures = Vec::new();
    for (key, got, width) in [
        ("pool3", &pool3, FEATURES),
        ("logits", &logits, CLASSES),
        ("logits_unbiased", &unbiased, CLASSES),
    ] {
        let want = get(key);
        assert_eq!(want.shape, [names.len(), width], "{key} shape");
        let scale = want.data.iter().fold(0f64, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        println!(
            "{key}: worst |difference| {worst:.3e} = {:.3e} × max|expected| ({scale:.3})",
            worst / scale
        );
        if worst > 1e-4 * scale {
            failures.push(format!("{key}: worst difference {worst} > 1e-4 × {scale}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
