//! CIFAR-10 and CIFAR-100, from the binary or the python archive, packed or extracted.
//!
//! Binary records are a label byte (CIFAR-100: a coarse then a fine label byte) and
//! 3072 pixel bytes, a 32×32 plane each of red, green and blue. Python batches are
//! pickled dicts holding `data` (n × 3072 uint8, the same planes) and `labels`
//! (CIFAR-100: `fine_labels`). Train is the five data batches in order (CIFAR-100: the
//! train file); test is the test batch.

use serde::{Deserialize, Serialize};

use super::pickle::{self, Py};
use super::{DataError, Images, LabelledImage, Location, Split};

const PIXELS: usize = 3072;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cifar {
    Ten,
    Hundred,
}

impl Cifar {
    fn name(self) -> &'static str {
        match self {
            Cifar::Ten => "CIFAR-10",
            Cifar::Hundred => "CIFAR-100",
        }
    }

    /// Member base names: (binary batches, binary meta, python batches, python meta).
    fn members(
        self,
        split: Split,
    ) -> (
        Vec<&'static str>,
        &'static str,
        Vec<&'static str>,
        &'static str,
    ) {
        match (self, split) {
            (Cifar::Ten, Split::Train) => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "batches.meta.txt",
                vec![
                    "data_batch_1",
                    "data_batch_2",
                    "data_batch_3",
                    "data_batch_4",
                    "data_batch_5",
                ],
                "batches.meta",
            ),
            (Cifar::Ten, Split::Test) => (
                vec!["test_batch.bin"],
                "batches.meta.txt",
                vec!["test_batch"],
                "batches.meta",
            ),
            (Cifar::Hundred, Split::Train) => (
                vec!["train.bin"],
                "fine_label_names.txt",
                vec!["train"],
                "meta",
            ),
            (Cifar::Hundred, Split::Test) => (
                vec!["test.bin"],
                "fine_label_names.txt",
                vec!["test"],
                "meta",
            ),
        }
    }

    /// Bytes before the pixels in a binary record, and which of them is the label.
    fn label_bytes(self) -> (usize, usize) {
        match self {
            Cifar::Ten => (1, 0),
            Cifar::Hundred => (2, 1),
        }
    }
}

fn base(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Reads one split of CIFAR-10 or CIFAR-100 from an archive or a folder.
pub fn read(location: &Location, which: Cifar, split: Split) -> Result<Images, DataError> {
    let (bin, bin_meta, py, py_meta) = which.members(split);
    let wanted: Vec<&str> = bin
        .iter()
        .chain(&py)
        .chain([&bin_meta, &py_meta])
        .copied()
        .collect();
    let found = location.read_matching(&|n| wanted.contains(&base(n)), true)?;
    let by_base = |b: &str| -> Result<Option<(&String, &Vec<u8>)>, DataError> {
        let mut hits = found.iter().filter(|(n, _)| base(n) == b);
        let first = hits.next();
        if let (Some((a, _)), Some((c, _))) = (first, hits.next()) {
            return Err(DataError::bad(
                location.describe(a),
                None,
                format!("`{b}` appears twice (also as `{c}`)"),
            ));
        }
        Ok(first)
    };
    let is_binary = by_base(bin[0])?.is_some();
    let (batches, meta, format) = if is_binary {
        (&bin, bin_meta, "binary")
    } else {
        (&py, py_meta, "python")
    };
    let missing = |b: &str| {
        DataError::bad(
            location.path().display().to_string(),
            None,
            format!(
                "no `{b}`: expected the {} {format} layout (e.g. {} of {})",
                which.name(),
                if is_binary {
                    "cifar-10-batches-bin/"
                } else {
                    "cifar-10-batches-py/"
                },
                if which == Cifar::Ten {
                    "cifar-10-binary.tar.gz or cifar-10-python.tar.gz"
                } else {
                    "cifar-100-binary.tar.gz or cifar-100-python.tar.gz"
                },
            ),
        )
    };
    let (meta_name, meta_bytes) = by_base(meta)?.ok_or_else(|| missing(meta))?;
    let classes = if is_binary {
        String::from_utf8_lossy(meta_bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        python_names(meta_bytes, which, &location.describe(meta_name))?
    };
    let mut records: Vec<LabelledImage> = Vec::new();
    for b in batches.iter() {
        let (name, bytes) = by_base(b)?.ok_or_else(|| missing(b))?;
        let file = location.describe(name);
        if is_binary {
            read_binary(bytes, which, &classes, &file, &mut records)?;
        } else {
            read_python(bytes, which, &classes, &file, &mut records)?;
        }
    }
    let split_name = match split {
        Split::Train => "train",
        Split::Test => "test",
    };
    Ok(Images {
        classes,
        height: 32,
        width: 32,
        description: format!("{} {split_name} ({format})", which.name()),
        count: records.len(),
        iter: Box::new(records.into_iter().map(Ok)),
    })
}

/// Planes (R, G, B) to interleaved RGB.
fn interleave(planes: &[u8]) -> Vec<u8> {
    let n = PIXELS / 3;
    let mut out = Vec::with_capacity(PIXELS);
    for i in 0..n {
        out.extend([planes[i], planes[n + i], planes[2 * n + i]]);
    }
    out
}

fn check_label(label: u32, classes: &[String], file: &str, at: String) -> Result<u32, DataError> {
    if (label as usize) < classes.len() {
        Ok(label)
    } else {
        Err(DataError::bad(
            file,
            Some(at),
            format!("label {label} is outside the {} classes", classes.len()),
        ))
    }
}

fn read_binary(
    bytes: &[u8],
    which: Cifar,
    classes: &[String],
    file: &str,
    out: &mut Vec<LabelledImage>,
) -> Result<(), DataError> {
    let (prefix, label_at) = which.label_bytes();
    let record = prefix + PIXELS;
    if !bytes.len().is_multiple_of(record) {
        return Err(DataError::bad(
            file,
            None,
            format!(
                "size {} is not a multiple of the {record}-byte record (truncated or not a {} batch?)",
                bytes.len(),
                which.name()
            ),
        ));
    }
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let at = format!("record {i}, byte offset {}", i * record);
        let label = check_label(rec[label_at] as u32, classes, file, at)?;
        out.push((interleave(&rec[prefix..]), label));
    }
    Ok(())
}

fn read_python(
    bytes: &[u8],
    which: Cifar,
    classes: &[String],
    file: &str,
    out: &mut Vec<LabelledImage>,
) -> Result<(), DataError> {
    let bad = |message: String| DataError::bad(file, None, message);
    let py = pickle::parse(bytes).map_err(|e| bad(format!("not a readable pickle: {e}")))?;
    let key = if which == Cifar::Ten {
        "labels"
    } else {
        "fine_labels"
    };
    let (shape, data) = py
        .get("data")
        .ok_or_else(|| bad("no `data` in the batch".into()))?
        .u8_array()
        .map_err(|e| bad(format!("`data`: {e}")))?;
    let Some(Py::List(labels)) = py.get(key) else {
        return Err(bad(format!("no `{key}` list in the batch")));
    };
    if shape.len() != 2 || shape[1] != PIXELS || shape[0] != labels.len() {
        return Err(bad(format!(
            "`data` has shape {shape:?} for {} labels, expected [{}, 3072]",
            labels.len(),
            labels.len()
        )));
    }
    for (i, (row, label)) in data.chunks_exact(PIXELS).zip(labels).enumerate() {
        let label = label
            .int()
            .filter(|&l| l >= 0)
            .ok_or_else(|| bad(format!("label {i} is not a non-negative integer")))?;
        let label = check_label(label as u32, classes, file, format!("record {i}"))?;
        out.push((interleave(row), label));
    }
    Ok(())
}

fn python_names(bytes: &[u8], which: Cifar, file: &str) -> Result<Vec<String>, DataError> {
    let key = if which == Cifar::Ten {
        "label_names"
    } else {
        "fine_label_names"
    };
    let py = pickle::parse(bytes)
        .map_err(|e| DataError::bad(file, None, format!("not a readable pickle: {e}")))?;
    match py.get(key) {
        Some(Py::List(names)) => names
            .iter()
            .map(|n| {
                n.text().ok_or_else(|| {
                    DataError::bad(file, None, format!("`{key}` holds a non-string"))
                })
            })
            .collect(),
        _ => Err(DataError::bad(file, None, format!("no `{key}` list"))),
    }
}

#[cfg(test)]
pub mod tests {
    use super::super::pickle::testutil as pickles;
    use super::*;

    pub const NAMES: [&str; 10] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// Records with recognisable pixels: image `k` has R = k, G = pixel index % 256, B = 255 − k.
    pub fn planes(k: u8) -> Vec<u8> {
        let mut p = vec![k; 1024];
        p.extend((0..1024).map(|i| (i % 256) as u8));
        p.extend(vec![255 - k; 1024]);
        p
    }

    fn binary_batch(labels: &[u8], first: u8) -> Vec<u8> {
        labels
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| std::iter::once(l).chain(planes(first + i as u8)))
            .collect()
    }

    pub fn binary_archive(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("cifar-10-binary.tar.gz");
        let meta = NAMES.join("\n") + "\n\n";
        let batches: Vec<(String, Vec<u8>)> = (1..=5)
            .map(|b| {
                (
                    format!("cifar-10-batches-bin/data_batch_{b}.bin"),
                    binary_batch(&[b, 9], 10 * b),
                )
            })
            .collect();
        let test = binary_batch(&[3], 200);
        let mut members: Vec<(&str, &[u8])> =
            vec![("cifar-10-batches-bin/batches.meta.txt", meta.as_bytes())];
        members.extend(
            batches
                .iter()
                .rev()
                .map(|(n, b)| (n.as_str(), b.as_slice())),
        );
        members.push(("cifar-10-batches-bin/test_batch.bin", &test));
        std::fs::write(&path, crate::testutil::tar_gz(&members)).unwrap();
        path
    }

    fn collect(images: Images) -> Vec<(Vec<u8>, u32)> {
        images.iter.map(Result::unwrap).collect()
    }

    #[test]
    fn binary_archive_round_trips_in_batch_order() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::detect(&binary_archive(dir.path())).unwrap();
        let train = read(&loc, Cifar::Ten, Split::Train).unwrap();
        assert_eq!(train.classes, NAMES);
        assert_eq!(train.description, "CIFAR-10 train (binary)");
        let records = collect(train);
        let labels: Vec<u32> = records.iter().map(|r| r.1).collect();
        assert_eq!(labels, [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        let first = &records[0].0;
        assert_eq!(&first[..6], &[10, 0, 245, 10, 1, 245]);
        assert_eq!(first[3 * 300 + 1], (300 % 256) as u8);
        let test = collect(read(&loc, Cifar::Ten, Split::Test).unwrap());
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].1, 3);
        assert_eq!(test[0].0[0], 200);
    }

    #[test]
    fn python_archive_matches_the_binary_one() {
        let dir = tempfile::tempdir().unwrap();
        let binary = collect(
            read(
                &Location::detect(&binary_archive(dir.path())).unwrap(),
                Cifar::Ten,
                Split::Train,
            )
            .unwrap(),
        );
        let meta = pickles::meta("label_names", &NAMES);
        let batches: Vec<(String, Vec<u8>)> = (1..=5u8)
            .map(|b| {
                let data: Vec<u8> = [planes(10 * b), planes(10 * b + 1)].concat();
                (
                    format!("cifar-10-batches-py/data_batch_{b}"),
                    pickles::batch(&data, &[b as u32, 9], "labels"),
                )
            })
            .collect();
        let mut members: Vec<(&str, &[u8])> = vec![("cifar-10-batches-py/batches.meta", &meta)];
        members.extend(batches.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
        let path = dir.path().join("cifar-10-python.tar.gz");
        std::fs::write(&path, crate::testutil::tar_gz(&members)).unwrap();
        let images = read(&Location::detect(&path).unwrap(), Cifar::Ten, Split::Train).unwrap();
        assert_eq!(images.description, "CIFAR-10 train (python)");
        assert_eq!(collect(images), binary);
    }

    #[test]
    fn cifar100_fine_labels_from_an_extracted_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cifar-100-binary");
        std::fs::create_dir_all(&root).unwrap();
        let names: Vec<String> = (0..100).map(|i| format!("class{i}")).collect();
        std::fs::write(root.join("fine_label_names.txt"), names.join("\n")).unwrap();
        let record = |coarse: u8, fine: u8, k: u8| [vec![coarse, fine], planes(k)].concat();
        std::fs::write(
            root.join("train.bin"),
            [record(3, 77, 1), record(19, 99, 2)].concat(),
        )
        .unwrap();
        let images = read(
            &Location::detect(dir.path()).unwrap(),
            Cifar::Hundred,
            Split::Train,
        )
        .unwrap();
        assert_eq!(images.classes.len(), 100);
        let records = collect(images);
        assert_eq!(records.iter().map(|r| r.1).collect::<Vec<_>>(), [77, 99]);
        assert_eq!(records[1].0[0], 2);
    }

    #[test]
    fn bad_record_size_and_bad_label_name_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("batches.meta.txt"), NAMES.join("\n")).unwrap();
        std::fs::write(root.join("test_batch.bin"), vec![0u8; 3073 * 2 + 5]).unwrap();
        let loc = Location::detect(dir.path()).unwrap();
        let err = read(&loc, Cifar::Ten, Split::Test)
            .err()
            .unwrap()
            .to_string();
        assert!(err.ends_with("cifar-10-batches-bin/test_batch.bin: size 6151 is not a multiple of the 3073-byte record (truncated or not a CIFAR-10 batch?)"), "{err}");
        let mut bytes = binary_batch(&[1, 2, 10], 0);
        bytes[2 * 3073] = 10;
        std::fs::write(root.join("test_batch.bin"), bytes).unwrap();
        let err = read(&loc, Cifar::Ten, Split::Test)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.ends_with(
                "test_batch.bin (record 2, byte offset 6146): label 10 is outside the 10 classes"
            ),
            "{err}"
        );
    }
}
