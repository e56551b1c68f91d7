//! NumPy's `.npy` arrays and `.npz` archives of them: read as f64 (from `<f4`, `<f8`,
//! `<i4`, `<i8`, `|u1`, `<u4`), written as `<f8` or `<f4`, C order.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use super::MetricError;

#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Array {
    /// A 2-d array as (rows, cols); a 1-d array as one row.
    pub fn matrix(&self) -> Option<(usize, usize)> {
        match self.shape.as_slice() {
            [r, c] => Some((*r, *c)),
            [n] => Some((1, *n)),
            _ => None,
        }
    }
}

/// Parses `.npy` bytes; `file` names them in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Array, MetricError> {
    let bad = |m: String| MetricError::format(file, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array (bad magic)".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header".into()))?;
    let header = String::from_utf8_lossy(header);
    let field = |key: &str| -> Option<String> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        let end = if rest.starts_with('(') {
            rest.find(')')? + 1
        } else {
            rest.find([',', '}'])?
        };
        Some(rest[..end].trim().trim_matches('\'').to_string())
    };
    let descr = field("descr").ok_or_else(|| bad(format!("no dtype in header {header}")))?;
    if field("fortran_order").as_deref() == Some("True") {
        return Err(bad("Fortran-ordered arrays are not supported".into()));
    }
    let shape_text = field("shape").ok_or_else(|| bad(format!("no shape in header {header}")))?;
    let shape: Vec<usize> = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad(format!("bad shape {shape_text}")))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    let width = match descr.as_str() {
        "<f8" | "<i8" => 8,
        "<f4" | "<i4" | "<u4" => 4,
        "|u1" | "<u1" => 1,
        other => {
            return Err(bad(format!(
                "unsupported dtype {other}; expected float32/64 or integers"
            )));
        }
    };
    if body.len() < n * width {
        return Err(bad(format!(
            "truncated data: {} bytes for shape {shape:?} of {descr}",
            body.len()
        )));
    }
    let data = body[..n * width]
        .chunks_exact(width)
        .map(|c| match descr.as_str() {
            "<f8" => f64::from_le_bytes(c.try_into().expect("8")),
            "<i8" => i64::from_le_bytes(c.try_into().expect("8")) as f64,
            "<f4" => f32::from_le_bytes(c.try_into().expect("4")) as f64,
            "<i4" => i32::from_le_bytes(c.try_into().expect("4")) as f64,
            "<u4" => u32::from_le_bytes(c.try_into().expect("4")) as f64,
            _ => c[0] as f64,
        })
        .collect();
    Ok(Array { shape, data })
}

pub fn read(path: &Path) -> Result<Array, MetricError> {
    let bytes = std::fs::read(path).map_err(MetricError::io(path))?;
    parse(&bytes, &path.display().to_string())
}

/// `.npy` bytes of an f64 (`<f8`) or f32 (`<f4`) array.
pub fn encode(shape: &[usize], data: &[f64], f32: bool) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let descr = if f32 { "<f4" } else { "<f8" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Data starts 64-byte aligned, the header ending in a newline, as NumPy writes it.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for &v in data {
        if f32 {
            out.extend((v as f32).to_le_bytes());
        } else {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// Every array of an `.npz` archive, by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Array>, MetricError> {
    let file = std::fs::File::open(path).map_err(MetricError::io(path))?;
    let name = path.display().to_string();
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| MetricError::format(&name, format!("not an .npz archive: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| MetricError::format(&name, e.to_string()))?;
        let member_name = member.name().to_string();
        let mut bytes = Vec::new();
        member
            .read_to_end(&mut bytes)
            .map_err(|e| MetricError::format(&name, format!("{member_name}: {e}")))?;
        let key = member_name.trim_end_matches(".npy").to_string();
        out.insert(key, parse(&bytes, &format!("{name}:{member_name}"))?);
    }
    Ok(out)
}

/// Writes an `.npz` archive (stored, as `numpy.savez` does), atomically enough for a
/// stage's output folder.
pub fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) -> Result<(), MetricError> {
    let file = std::fs::File::create(path).map_err(MetricError::io(path))?;
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let err = |e: String| MetricError::format(path.display().to_string(), e);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| err(e.to_string()))?;
        zip.write_all(bytes).map_err(|e| err(e.to_string()))?;
    }
    zip.finish().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let bytes = encode(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5], false);
        assert_eq!((bytes.len() - 48) % 64, 0);
        let a = parse(&bytes, "x").unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.data, [1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        let f = parse(&encode(&[3], &[0.5, 1.5, 2.5], true), "x").unwrap();
        assert_eq!(
            (f.shape.as_slice(), f.data.as_slice()),
            ([3usize].as_slice(), [0.5, 1.5, 2.5].as_slice())
        );
    }

    #[test]
    fn npz_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npz");
        write_npz(
            &path,
            &[
                ("mu", encode(&[2], &[1.0, 2.0], false)),
                ("sigma", encode(&[2, 2], &[1.0, 0.0, 0.0, 1.0], false)),
            ],
        )
        .unwrap();
        let arrays = read_npz(&path).unwrap();
        assert_eq!(arrays["mu"].shape, [2]);
        assert_eq!(arrays["sigma"].shape, [2, 2]);
    }

    #[test]
    fn bad_files() {
        assert!(
            parse(b"PK\x03\x04xxxxxxx", "f.npy")
                .unwrap_err()
                .to_string()
                .contains("not a .npy array")
        );
        let mut bytes = encode(&[4], &[1.0; 4], false);
        bytes.truncate(bytes.len() - 8);
        assert!(
            parse(&bytes, "f.npy")
                .unwrap_err()
                .to_string()
                .contains("truncated data")
        );
    }
}
