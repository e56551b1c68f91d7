//! Adaptive pseudo augmentation (APA; Jiang et al., 2021), as StudioGAN v0.4 applies it
//! (`utils/apa_aug.py`, `apply_apa`): in D's steps each real image is replaced, with
//! probability p (`adaptive.rs`), by a fake one (detached), so that D is told some
//! fakes are real.

use burn::prelude::*;
use rng::Rng;

/// Whether each of `n` real images is replaced: uniform draws below p.
pub fn flags(n: usize, p: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| if rng.f64() < p { 1.0 } else { 0.0 })
        .collect()
}

/// fake · flag + real · (1 − flag), per image.
pub fn mix<B: Backend>(real: Tensor<B, 4>, fake: Tensor<B, 4>, flags: &[f32]) -> Tensor<B, 4> {
    let n = flags.len();
    let flag = Tensor::<B, 1>::from_floats(flags, &real.device()).reshape([n, 1, 1, 1]);
    fake * flag.clone() + real * (flag.neg() + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn flagged_images_are_replaced_by_fakes() {
        let device = Default::default();
        let real = Tensor::<Flex, 4>::zeros([3, 1, 2, 2], &device);
        let fake = Tensor::<Flex, 4>::ones([3, 1, 2, 2], &device);
        let mixed = mix(real, fake, &[1.0, 0.0, 1.0]);
        let v = mixed.into_data().to_vec::<f32>().unwrap();
        assert_eq!(v, [[1.0; 4], [0.0; 4], [1.0; 4]].concat());
        let mut rng = Rng::new(3);
        assert!(flags(100, 0.0, &mut rng).iter().all(|f| *f == 0.0));
        assert!(flags(100, 1.0, &mut rng).iter().all(|f| *f == 1.0));
    }
}
