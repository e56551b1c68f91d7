//! The `Clean` resizer against StudioGAN v0.4's `clean` (PIL's bicubic on float
//! channels), through the fixtures `tools/fixtures/resize.py` makes
//! (`fixtures/resize/` at the repository's root): every case found there, within
//! 1e-6 × 255 (the images' range; our two passes are f32 matmuls, PIL sums in f64 and
//! stores the first pass as f32).

use kernels::TestBackend as Backend;
use metrics::inception::images_tensor;
use metrics::npy;
use metrics::resize::{Resizer, resize};

#[test]
fn clean_resize_matches_pil_bicubic() {
    let device = Default::default();
    let cases = fixtures::cases(&fixtures::ours("resize"));
    assert!(!cases.is_empty(), "no cases in fixtures/resize");
    for case in cases {
        let arrays = npy::read_npz(&case).unwrap_or_else(|e| panic!("{e}"));
        let (images, expected) = (&arrays["images"], &arrays["resized"]);
        let [n, h, w, _] = images.shape[..] else {
            panic!("{}: images are (n, h, w, 3)", case.display())
        };
        let [_, height, width, _] = expected.shape[..] else {
            panic!("{}: resized images are (n, h, w, 3)", case.display())
        };
        let pixels: Vec<u8> = images.data.iter().map(|&v| v as u8).collect();
        let x = images_tensor::<Backend>(&pixels, n, h, w, &device);
        let got = resize(x, [height, width], Resizer::Clean) * 255.0;
        // NCHW → NHWC, as the fixture keeps them.
        let got: Vec<f32> = got.permute([0, 2, 3, 1]).into_data().to_vec().unwrap();
        let worst = got
            .iter()
            .zip(&expected.data)
            .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
        eprintln!(
            "{}: {n} images {h}×{w} → {height}×{width}, max |diff| {worst:.2e}",
            case.display()
        );
        assert!(
            worst <= 1e-6 * 255.0,
            "{}: max |diff| {worst}",
            case.display()
        );
    }
}
