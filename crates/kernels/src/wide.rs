//! The "wide" layout of a stride-1 convolution, in which every kernel tap reads one
//! contiguous run of the padded input: the output is accumulated with the padded
//! input's row length `wp` (row `oy` at `oy·wp`), so the input under tap `(ki, kj)` is
//! the padded plane shifted by `ki·wp + kj`. The `wp − wo` columns at the end of each
//! wide row are discarded (forward) or held at zero (∂w).

use crate::conv::Geometry;

/// The padded plane's shape and the length of a wide output plane.
pub struct Wide {
    pub hp: usize,
    pub wp: usize,
    pub len: usize,
}

impl Wide {
    pub fn of(g: &Geometry) -> Wide {
        debug_assert_eq!(g.stride, [1, 1], "the wide layout is for stride 1");
        let (hp, wp) = (g.h + 2 * g.padding[0], g.w + 2 * g.padding[1]);
        Wide {
            hp,
            wp,
            len: (g.out_h() - 1) * wp + g.out_w(),
        }
    }

    pub fn plane(&self) -> usize {
        self.hp * self.wp
    }

    /// Where tap `(ki, kj)` of a padded plane starts.
    pub fn shift(&self, ki: usize, kj: usize) -> usize {
        ki * self.wp + kj
    }
}

/// One image's `c` planes into `padded` (`[c, hp, wp]`, zero borders).
pub fn pad(image: &[f32], g: &Geometry, wide: &Wide, padded: &mut [f32]) {
    padded.fill(0.0);
    for (plane, dst) in image.chunks(g.h * g.w).zip(padded.chunks_mut(wide.plane())) {
        for (line, row) in plane
            .chunks(g.w)
            .zip(dst[g.padding[0] * wide.wp..].chunks_mut(wide.wp))
        {
            row[g.padding[1]..][..g.w].copy_from_slice(line);
        }
    }
}
