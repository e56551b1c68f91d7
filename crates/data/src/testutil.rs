//! Files in the published formats, built in memory for tests: of this crate, and of the
//! `pipe` binary end to end (archives served to `Download`, checkpoints given to
//! `Train(init:)`), which would otherwise need these formats' crates of their own.

use std::io::Write;
use std::path::Path;

use md5::Digest as _;

/// A `.tar.gz` of `members` (name, bytes).
pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A `.zip` of `members` (name, bytes), deflated.
pub fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The MD5 of `bytes` in lowercase hex, as `Download(md5:)` takes it.
pub fn md5_hex(bytes: &[u8]) -> String {
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn int(out: &mut Vec<u8>, v: usize) {
    out.push(b'J');
    out.extend((v as i32).to_le_bytes());
}

fn ordered_dict(out: &mut Vec<u8>) {
    out.extend(b"ccollections\nOrderedDict\n)R");
}

/// Writes a PyTorch state dict the way `torch.save` does (zip format): a pickle of an
/// `OrderedDict` of `_rebuild_tensor_v2` calls whose storages are separate entries.
/// `tensors`: (name, shape, values in C order).
pub fn save_state_dict(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut pkl = vec![0x80, 2];
    ordered_dict(&mut pkl);
    pkl.push(b'(');
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        assert_eq!(values.len(), shape.iter().product::<usize>());
        unicode(&mut pkl, name);
        pkl.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        pkl.push(b'(');
        unicode(&mut pkl, "storage");
        pkl.extend(b"ctorch\nFloatStorage\n");
        unicode(&mut pkl, &i.to_string());
        unicode(&mut pkl, "cpu");
        int(&mut pkl, values.len());
        pkl.extend(b"tQ");
        int(&mut pkl, 0);
        pkl.push(b'(');
        shape.iter().for_each(|&d| int(&mut pkl, d));
        pkl.push(b't');
        pkl.push(b'(');
        let mut stride = vec![1usize; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * shape[k + 1];
        }
        stride.iter().for_each(|&s| int(&mut pkl, s));
        pkl.push(b't');
        pkl.push(0x89);
        ordered_dict(&mut pkl);
        pkl.extend(b"tR");
    }
    pkl.extend(b"u.");
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", options).unwrap();
    zip.write_all(&pkl).unwrap();
    zip.start_file("archive/byteorder", options).unwrap();
    zip.write_all(b"little").unwrap();
    for (i, (_, _, values)) in tensors.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), options)
            .unwrap();
        for v in values {
            zip.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    zip.start_file("archive/version", options).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap();
}

/// The training split of the synthetic images `params` describes, packed into `path`
/// and opened: the data set of training tests and benchmarks.
pub fn packed_synthetic(
    params: &crate::synthetic::Synthetic,
    path: &Path,
) -> std::sync::Arc<crate::Packed> {
    let images = crate::synthetic::read(params, crate::Split::Train);
    let never = std::sync::atomic::AtomicBool::new(false);
    crate::pack(images, path, &|_, _| {}, &never).expect("pack synthetic images");
    std::sync::Arc::new(crate::Packed::open(path).expect("open the pack"))
}
