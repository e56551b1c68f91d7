//! Decoding PNG and JPEG files to RGB, and resizing.

use explain::Explain;
use image::imageops::FilterType;

use super::Malformed;
use serde::{Deserialize, Serialize};

/// The filter used to resize images, as named in pipeline files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Filter {
    /// The nearest pixel.
    Nearest,
    /// Linear interpolation (a triangle filter).
    Bilinear,
    /// Catmull–Rom.
    Bicubic,
    /// Lanczos with a window of 3.
    Lanczos3,
}

impl Filter {
    fn kind(self) -> FilterType {
        match self {
            Filter::Nearest => FilterType::Nearest,
            Filter::Bilinear => FilterType::Triangle,
            Filter::Bicubic => FilterType::CatmullRom,
            Filter::Lanczos3 => FilterType::Lanczos3,
        }
    }
}

/// Decodes a PNG or JPEG to RGB (grayscale, CMYK and alpha images are converted), then
/// resizes it to `size × size` if asked. Returns width, height and the pixels.
pub fn decode_rgb(
    bytes: &[u8],
    resize: Option<(u32, Filter)>,
) -> Result<(u32, u32, Vec<u8>), Malformed> {
    let image = image::load_from_memory(bytes)
        .map_err(|e| Malformed(format!("cannot decode the image: {e}")))?;
    let mut rgb = image.to_rgb8();
    if let Some((size, filter)) = resize
        && rgb.dimensions() != (size, size)
    {
        rgb = image::imageops::resize(&rgb, size, size, filter.kind());
    }
    let (w, h) = rgb.dimensions();
    Ok((w, h, rgb.into_raw()))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A 4×4 CMYK JPEG (Adobe inverted), made for this test with an image library:
    /// cyan rises along x, magenta along y, no yellow or black.
    pub const CMYK_JPEG: &[u8] = include_bytes!("testdata/cmyk_4x4.jpg");

    pub fn grayscale_jpeg(w: u32, h: u32) -> Vec<u8> {
        let gray = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 40 + y * 10) as u8]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
            .encode_image(&gray)
            .unwrap();
        out
    }

    #[test]
    fn grayscale_jpeg_becomes_rgb() {
        let (w, h, px) = decode_rgb(&grayscale_jpeg(5, 3), None).unwrap();
        assert_eq!((w, h, px.len()), (5, 3, 45));
        assert!(px.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn cmyk_jpeg_becomes_rgb() {
        let (w, h, px) = decode_rgb(CMYK_JPEG, None).unwrap();
        assert_eq!((w, h, px.len()), (4, 4, 48));
        // Pixel (0,0) has no ink: white. Pixel (3,0) has cyan: less red, full green/blue.
        assert!(px[0] > 240 && px[1] > 240 && px[2] > 240, "{:?}", &px[..3]);
        let (r, g, b) = (px[9], px[10], px[11]);
        assert!(r < 120 && g > 220 && b > 220, "{r} {g} {b}");
    }

    #[test]
    fn resize_and_bad_bytes() {
        let (w, h, _) = decode_rgb(&grayscale_jpeg(8, 6), Some((4, Filter::Bilinear))).unwrap();
        assert_eq!((w, h), (4, 4));
        assert!(
            decode_rgb(b"not an image", None)
                .unwrap_err()
                .0
                .starts_with("cannot decode the image")
        );
    }
}
