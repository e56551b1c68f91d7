//! The augmented copy of a training image that consistency regularization compares it
//! with, and that ContraGAN's augmented positives come from (StudioGAN at 67e0de0: its
//! loader's `consistency_reg` branch). The copy is a function of the image's index in
//! the data set, cycling through 18 augmentations: index mod 18 picks whether to mirror
//! (the first nine mirror), then one of three horizontal and three vertical offsets of a
//! crop from the image reflect-padded by an eighth of each side.

/// The augmented copy of `image` (CHW), the data set's image number `index`, into `out`.
pub fn augmented_view(
    image: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    index: usize,
    out: &mut [f32],
) {
    let k = index % 18;
    let (mirror, tx, ty) = (k / 9 == 0, (k % 9) / 3, k % 3);
    let (pad_h, pad_w) = (height / 8, width / 8);
    let (top, left) = (ty * pad_h, tx * pad_w);
    // The padded image's row or column `p`, reflected back into 0..n (the edge itself is
    // not repeated, as NumPy's `reflect` does).
    let reflect = |p: usize, pad: usize, n: usize| -> usize {
        let i = p as isize - pad as isize;
        let last = n as isize - 1;
        let i = if i < 0 {
            -i
        } else if i > last {
            2 * last - i
        } else {
            i
        };
        i as usize
    };
    let plane = height * width;
    for c in 0..channels {
        for y in 0..height {
            let sy = reflect(y + top, pad_h, height);
            for x in 0..width {
                let sx = reflect(x + left, pad_w, width);
                let sx = if mirror { width - 1 - sx } else { sx };
                out[c * plane + y * width + x] = image[c * plane + sy * width + sx];
            }
        }
    }
}
